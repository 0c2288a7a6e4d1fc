"""The JavaScript clients a user would point at runwire, run with `node` against the local stack:
the npm `ai` package (seed 001's AI SDK UI message stream), seed 002's fetch-reader example, and
Chromium's EventSource running seed 000's browser flow with cookie auth.

The scripts live in tests/js and print JSON; these tests assert what a user would see. They need
`tests/js/node_modules` and `/usr/bin/chromium` (`bash tests/js/install.sh` installs both). Locally a
missing one skips; under CI it fails, so a green CI cannot hide a missing install step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() == "true"
NODE_TIMEOUT = 90


def missing_js_tooling() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS / "node_modules" / "ai").is_dir() or not (JS / "node_modules" / "playwright-core").is_dir():
        return "tests/js/node_modules is missing: run `bash tests/js/install.sh`"
    return None


def _missing_chromium() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run `bash tests/js/install.sh` as root (apt-get install chromium)"
    return None


def require(missing: str | None) -> None:
    if missing is not None:
        if IN_CI:
            pytest.fail(f"CI must install the JS client tooling: {missing}")
        pytest.skip(missing)


@pytest.fixture(autouse=True)
def js_tooling():
    require(missing_js_tooling())


def run_node(stack, script: str, *args: str, token: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "BASE": stack.base_url, "JWT": token if token is not None else stack.token(), **env}
    return subprocess.run(
        ["node", script, *args],
        check=False,
        cwd=JS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )


def node_json(stack, script: str, *args: str, expect_ok: bool = True, **env: str) -> dict[str, Any]:
    result = run_node(stack, script, *args, **env)
    context = f"exit {result.returncode}\nstdout: {result.stdout[-4000:]}\nstderr: {result.stderr[-4000:]}\nstack log:\n{stack.log_tail(30)}"
    if expect_ok:
        assert result.returncode == 0, context
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(f"{script} printed no JSON result\n{context}")


def chat(stack, mode: str, **args: Any) -> dict[str, Any]:
    return node_json(stack, "ai_sdk_chat.mjs", mode, json.dumps(args))


def probe(stack, path: str, body: dict[str, Any]) -> str:
    """What a plain POST answers, for a failure message when a verbatim example prints nothing."""
    response = httpx.post(f"{stack.base_url}{path}", json=body, headers=stack.headers(), timeout=30)
    return f"POST {path} {json.dumps(body)} -> {response.status_code} {response.headers.get('content-type')}: {response.text[:500]}"


def numbered(n: int) -> str:
    """What the scripted model answers to `[[scripted tokens=N]]`."""
    return "".join(f" {i}" for i in range(1, n + 1))


def is_uuid(value: str | None) -> bool:
    try:
        return value is not None and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


# --- seed 001: the AI SDK's own client --------------------------------------------------------------
def test_ai_sdk_ui_message_text_equals_the_streamed_answer(stack):
    result = chat(stack, "send", text="[[scripted tokens=12 delay_ms=5]]")

    assert result["errors"] == []
    assert result["role"] == "assistant"
    assert result["text"] == numbered(12)
    assert result["streamedText"] == result["text"]
    assert [part["state"] for part in result["textParts"]] == ["done"]
    headers = result["response"]["headers"]
    assert result["response"]["status"] == 200
    assert headers.get("x-vercel-ai-ui-message-stream") == "v1"
    assert headers.get("content-type", "").startswith("text/event-stream")
    types = result["chunkTypes"]
    assert types[0] == "start" and types[-1] == "finish", types
    for expected in ("start-step", "text-start", "text-delta", "text-end", "finish-step"):
        assert expected in types, types
    assert result["response"]["bodyTail"].endswith("data: [DONE]\n\n"), result["response"]["bodyTail"]


def test_ai_sdk_prose_answer_arrives_as_one_text_part(stack):
    result = chat(stack, "send", text="How do I deploy a static site to Vercel?", currentPage="/settings")

    assert result["errors"] == []
    assert result["text"].startswith('Here is a short answer about "How do I deploy a static site to Vercel".')
    assert result["text"] == result["streamedText"]
    assert result["partTypes"].count("text") == 1


def test_ai_sdk_calculator_question_yields_a_tool_part_with_input_and_output_391(stack):
    result = chat(stack, "send", text="What is 17 * 23?")

    assert result["errors"] == []
    tools = result["toolParts"]
    assert len(tools) == 1, result["partTypes"]
    tool = tools[0]
    assert tool["type"] == "tool-calculator" or (tool["type"] == "dynamic-tool" and tool["toolName"] == "calculator"), (
        tool
    )
    assert tool["state"] == "output-available", tool
    assert tool["input"] == {"expression": "17 * 23"}
    assert "391" in json.dumps(tool["output"]), tool["output"]
    assert "391" in result["text"]
    assert result["partTypes"].index(tool["type"]) < len(result["partTypes"]) - 1, (
        "the answer text follows the tool call"
    )


def test_ai_sdk_message_metadata_carries_usage(stack):
    result = chat(stack, "send", text="[[scripted tokens=5 delay_ms=1]]")

    usage = (result["metadata"] or {}).get("usage")
    assert isinstance(usage, dict), f"message metadata: {result['metadata']!r}"
    assert usage.get("outputTokens", 0) > 0 and usage.get("inputTokens", 0) > 0, usage


def test_x_conversation_id_echoes_the_given_uuid(stack):
    conversation_id = str(uuid.uuid4())
    result = chat(stack, "send", text="Hello", conversationId=conversation_id)

    assert result["response"]["headers"].get("x-conversation-id") == conversation_id


def test_x_conversation_id_is_a_fresh_uuid_when_none_is_given(stack):
    first = chat(stack, "send", text="Hello")
    second = chat(stack, "send", text="Hello")

    ids = [r["response"]["headers"].get("x-conversation-id") for r in (first, second)]
    assert all(is_uuid(i) for i in ids), ids
    assert ids[0] != ids[1]


def test_second_turn_with_the_accumulated_ui_messages_remembers_the_first(stack):
    conversation_id = str(uuid.uuid4())
    result = chat(stack, "turns", texts=["My name is Alex.", "What is my name?"], conversationId=conversation_id)

    first, second = result["turns"]
    assert first["text"].startswith("Nice to meet you, Alex.")
    assert second["text"].startswith("Your name is Alex."), second["text"]
    assert second["response"]["headers"].get("x-conversation-id") == conversation_id


def test_resume_get_rebuilds_the_in_flight_message_and_is_204_after_it_finished(stack):
    conversation_id = str(uuid.uuid4())
    result = chat(stack, "resume", text="[[scripted tokens=30 delay_ms=60]]", conversationId=conversation_id)

    original, resumed = result["original"], result["resumed"]
    assert result["inFlightAtResume"], "the resume GET answered only after the original stream had finished"
    assert resumed is not None, f"the resume GET found nothing active: {result['responses']}"
    assert resumed["errors"] == [] and original["errors"] == []
    assert resumed["chunkTypes"][0] == "start" and resumed["chunkTypes"][-1] == "finish", resumed["chunkTypes"]
    assert resumed["id"] == original["id"]
    assert original["text"] == numbered(30)
    assert resumed["text"] == original["text"]
    assert resumed["partTypes"] == original["partTypes"]
    resume_gets = [r for r in result["responses"] if r["method"] == "GET"]
    assert resume_gets[0]["url"].endswith(f"/api/agent/chat/{conversation_id}/stream")
    assert resume_gets[0]["headers"].get("x-vercel-ai-ui-message-stream") == "v1"
    assert resume_gets[0]["bodyTail"].endswith("data: [DONE]\n\n"), resume_gets[0]["bodyTail"]
    assert result["afterFinish"] is None
    assert resume_gets[-1]["status"] == 204


def test_reloaded_page_resumes_the_whole_answer_when_the_run_outlives_its_client(stack):
    conversation_id = str(uuid.uuid4())
    result = chat(
        stack,
        "reload",
        text="[[scripted tokens=30 delay_ms=60]]",
        conversationId=conversation_id,
        extraBody={"onDisconnect": "continue"},
    )

    assert result["seenBeforeReload"][-1] == "text-delta", "the first tab saw the answer begin"
    resumed = result["resumed"]
    assert resumed is not None, f"nothing to resume after the reload: {result['responses']}"
    assert resumed["errors"] == []
    assert resumed["text"] == numbered(30)
    assert resumed["metadata"]["status"] == "succeeded"


def test_closing_the_chat_stops_the_run_by_default(stack):
    # Seed 001: "Streams terminate early on client disconnect via abortSignal."
    result = chat(stack, "reload", text="[[scripted tokens=30 delay_ms=60]]", conversationId=str(uuid.uuid4()))

    resumed = result["resumed"]
    if resumed is not None:  # resumed before the cancel landed: it follows the run to its cancelled end
        assert resumed["metadata"]["status"] == "cancelled", resumed["metadata"]
        assert numbered(30).startswith(resumed["text"]) and resumed["text"] != numbered(30)
    else:
        assert [r["status"] for r in result["responses"] if r["method"] == "GET"] == [204]


def test_resume_get_is_204_for_a_conversation_with_nothing_active(stack):
    result = chat(stack, "reconnect", conversationId=str(uuid.uuid4()))

    assert result["resumed"] is None
    assert [r["status"] for r in result["responses"]] == [204]


def test_ai_sdk_reports_the_servers_401_without_a_token(stack):
    result = node_json(stack, "ai_sdk_chat.mjs", "send", json.dumps({"text": "Hello", "noAuth": True}), expect_ok=False)

    assert [r["status"] for r in result["responses"]] == [401]
    assert result.get("error"), result


# --- seed 002: the doc's own fetch reader -----------------------------------------------------------
def test_seed002_fetch_reader_example_prints_the_answer(stack):
    result = run_node(stack, "seed002_fetch_reader.mjs", MESSAGE="Hello")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('Here is a short answer about "Hello".'), result.stdout or probe(
        stack, "/chat/stream", {"agent_id": "ag_c47e7c97_b2f2", "message": "Hello"}
    )
    assert result.stdout.endswith("set MODEL_PROVIDER=anthropic for real answers.)"), result.stdout


def test_seed002_fetch_reader_example_prints_every_token_of_a_long_answer(stack):
    # The example splits each read on newlines without buffering: it only works if the server
    # writes every event whole in one write. 80 tokens, 1 ms apart, make many small writes.
    result = run_node(
        stack, "seed002_fetch_reader.mjs", MESSAGE="[[scripted tokens=80 delay_ms=1]]"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == numbered(80), result.stdout or probe(
        stack, "/chat/stream", {"agent_id": "ag_c47e7c97_b2f2", "message": "Hi"}
    )


# --- seed 000: Chromium's EventSource with the JWT in a cookie --------------------------------------
@pytest.fixture(scope="module")
def browser_flows(stack):
    require(missing_js_tooling() or _missing_chromium())
    flows = [
        {"name": "bearer", "auth": "header", "task": "[[scripted tokens=25 delay_ms=10]]"},
        {"name": "cookie", "auth": "cookie", "task": "Hello"},
    ]
    return node_json(stack, "eventsource_browser.mjs", json.dumps({"flows": flows}))


def stored_events(stack, stream_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.base_url}/v1/runs/{stream_id}/events", headers=stack.headers(), timeout=30)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["done"], page
    return page["events"]


def test_chromium_eventsource_receives_every_data_chunk_then_end_with_cookie_auth(stack, browser_flows):
    flow = browser_flows["bearer"]

    assert flow["status"] == 202, flow
    assert flow["errors"] == [], flow
    assert flow["ended"] is True
    events = stored_events(stack, flow["streamId"])
    assert flow["chunks"] == [e["data"] for e in events if e["event"] == "data"]
    assert flow["lastEventIds"] == [str(e["seq"]) for e in events if e["event"] == "data"]
    assert "".join(c["text"] for c in flow["chunks"] if c["type"] == "text") == numbered(25)
    assert flow["chunks"][-1]["type"] == "usage"
    assert browser_flows["landingStatus"] == 200
    assert "Chrome/" in browser_flows["userAgent"]


def test_chromium_cookie_alone_cannot_start_a_run(stack, browser_flows):
    # Cookies authenticate GETs only (seed 000: cookie auth is for SSE GETs), so a page on another
    # site cannot start or cancel runs with the user's cookie.
    flow = browser_flows["cookie"]

    assert flow["status"] == 401, flow
    assert flow["body"]["error"]["code"] == "unauthenticated"
    assert "GET requests only" in flow["body"]["error"]["message"]
    assert [r["status"] for r in browser_flows["failedResponses"]] == [401]
