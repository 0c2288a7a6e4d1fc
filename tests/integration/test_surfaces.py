"""Seeds 001, 002 and 003 over real HTTP, and every format on any stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "seed_examples"


def data_lines(response) -> list:
    return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def test_seed002_httpx_example_prints_the_answer(stack):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "seed002_httpx.py")],
        env={**os.environ, "BASE": stack.base_url, "TOKEN": stack.token()},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('Here is a short answer about "Hello".')


def test_seed002_stream_has_text_tool_events_and_one_done(stack, client):
    with client.stream("POST", f"{stack.base_url}/chat/stream", headers={"Authorization": f"Bearer {stack.token()}"},
                       json={"agent_id": "ag_chat", "message": "What is 17 * 23?", "session_id": f"s-{uuid.uuid4().hex}"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line) for line in data_lines(response)]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"]
    assert events[0] == {"type": "tool_call", "name": "calculator", "args": {"expression": "17 * 23"}}
    assert events[1]["name"] == "calculator" and events[1]["result"]["result"] == 391
    assert kinds.count("done") == 1 and kinds[-1] == "done"
    usage = events[-1]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert "391" in "".join(e["content"] for e in events if e["type"] == "text")


def test_seed002_unknown_agent_is_404(stack, client):
    response = client.post(f"{stack.base_url}/chat/stream", headers={"Authorization": f"Bearer {stack.token()}"},
                           json={"agent_id": "ag_nobody", "message": "Hello"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_agent"


def test_seed002_without_token_is_401(stack, client):
    response = client.post(f"{stack.base_url}/chat/stream", json={"agent_id": "ag_chat", "message": "Hello"})
    assert response.status_code == 401


def test_seed002_session_id_is_conversation_memory(stack, client):
    session = f"s-{uuid.uuid4().hex}"
    for message in ("My name is Alex.", "What is my name?"):
        with client.stream("POST", f"{stack.base_url}/chat/stream", headers={"Authorization": f"Bearer {stack.token()}"},
                           json={"agent_id": "ag_chat", "message": message, "session_id": session}) as response:
            events = [json.loads(line) for line in data_lines(response)]
    assert "Your name is Alex" in "".join(e.get("content", "") for e in events)


def test_seed003_chat_run_answers_and_remembers(stack, client):
    headers = {"Authorization": f"Bearer {stack.token()}"}
    first = client.post(f"{stack.base_url}/chat/run", headers=headers, json={"message": "My name is Alex."})
    assert first.status_code == 200, first.text
    conversation = first.json()["conversation_id"]
    assert set(first.json()) == {"response", "conversation_id"} and "Alex" in first.json()["response"]
    second = client.post(f"{stack.base_url}/chat/run", headers=headers,
                         json={"message": "What is my name?", "conversation_id": conversation})
    assert second.json() == {"response": "Your name is Alex. You told me earlier in this conversation.",
                             "conversation_id": conversation}


def test_seed003_chat_run_reports_a_failed_run_as_502(stack, client):
    response = client.post(f"{stack.base_url}/chat/run", headers={"Authorization": f"Bearer {stack.token()}"},
                           json={"message": "[[scripted tokens=5 fail=overloaded after=0]]"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "model_overloaded"


def test_seed003_stream_sends_content_chunks_then_one_final_with_metrics(stack, client):
    conversation = f"c-{uuid.uuid4().hex}"
    with client.stream("POST", f"{stack.base_url}/chat/stream", headers={"Authorization": f"Bearer {stack.token()}"},
                       json={"message": "[[scripted tokens=20 delay_ms=5]]", "conversation_id": conversation}) as response:
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"
        events = [json.loads(line) for line in data_lines(response)]
    assert all(set(e) >= {"content", "is_final", "metrics"} for e in events)
    assert [e["is_final"] for e in events].count(True) == 1 and events[-1]["is_final"]
    assert all(e["metrics"] is None for e in events[:-1])
    assert "".join(e["content"] for e in events) == "".join(f" {n}" for n in range(1, 21))
    metrics = events[-1]["metrics"]
    assert metrics["output_tokens"] == 20 and metrics["time_to_first_token_ms"] > 0
    assert metrics["duration_ms"] > metrics["time_to_first_token_ms"]
    messages = client.get(f"{stack.base_url}/v1/conversations/{conversation}/messages", headers=stack.headers()).json()
    assert [m["role"] for m in messages["messages"]] == ["user", "assistant"]


@pytest.mark.parametrize("fmt", ["runwire", "ui-message-stream", "chat-events", "content-final"])
def test_any_format_on_any_stream(stack, client, fmt):
    run = stack.start(client, "What is 2 + 3?")
    with client.stream("GET", f"{stack.base_url}/v1/runs/{run['runId']}/stream", params={"format": fmt},
                       headers=stack.headers()) as response:
        assert response.status_code == 200
        body = response.read().decode()
    assert "5" in body
    terminal = {"runwire": "event:end", "ui-message-stream": "data:[DONE]",
                "chat-events": '"type":"done"', "content-final": '"is_final":true'}[fmt]
    assert body.replace(" ", "").count(terminal) == 1


def test_unknown_format_is_400_before_any_run_is_made(stack, client):
    response = client.post(f"{stack.base_url}/v1/runs/stream", params={"format": "morse"}, json={"task": "x"},
                           headers=stack.headers())
    assert response.status_code == 400
    assert "ui-message-stream" in response.json()["error"]["message"]


def test_seed001_stream_headers_and_protocol_shape(stack, client):
    conversation = str(uuid.uuid4())
    body = {"messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "What is 17 * 23?"}]}],
            "conversationId": conversation}
    with client.stream("POST", f"{stack.base_url}/api/agent/chat/stream", headers={"Authorization": f"Bearer {stack.token()}"},
                       json=body) as response:
        assert response.status_code == 200
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["x-conversation-id"] == conversation
        lines = data_lines(response)
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    kinds = [c["type"] for c in chunks]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    for expected in ("start-step", "tool-input-available", "tool-output-available", "text-start", "text-delta", "text-end", "finish-step"):
        assert expected in kinds
    assert chunks[-1]["messageMetadata"]["usage"]["outputTokens"] > 0


def test_seed001_creates_a_conversation_id_when_absent(stack, client):
    body = {"messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
    with client.stream("POST", f"{stack.base_url}/api/agent/chat/stream", headers={"Authorization": f"Bearer {stack.token()}"},
                       json=body) as response:
        conversation = response.headers["x-conversation-id"]
        response.read()
    assert str(uuid.UUID(conversation)) == conversation


def test_seed001_resume_replays_the_active_message_then_204_when_done(stack, client):
    conversation = str(uuid.uuid4())
    body = {"messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "[[scripted tokens=40 delay_ms=25]]"}]}],
            "conversationId": conversation, "onDisconnect": "continue"}
    with client.stream("POST", f"{stack.base_url}/api/agent/chat/stream", headers={"Authorization": f"Bearer {stack.token()}"},
                       json=body) as response:
        first = []
        for line in response.iter_lines():
            if line.startswith("data: "):
                first.append(line)
            if len(first) >= 5:
                break
    with client.stream("GET", f"{stack.base_url}/api/agent/chat/{conversation}/stream",
                       headers={"Authorization": f"Bearer {stack.token()}"}) as response:
        assert response.status_code == 200
        replay = data_lines(response)
    assert json.loads(replay[0])["type"] == "start" and replay[-1] == "[DONE]"
    text = "".join(json.loads(line).get("delta", "") for line in replay[:-1])
    assert text == "".join(f" {n}" for n in range(1, 41))
    time.sleep(0.3)
    after = client.get(f"{stack.base_url}/api/agent/chat/{conversation}/stream", headers={"Authorization": f"Bearer {stack.token()}"})
    assert after.status_code == 204


def test_seed001_resume_of_an_unknown_conversation_is_204(stack, client):
    response = client.get(f"{stack.base_url}/api/agent/chat/{uuid.uuid4()}/stream", headers={"Authorization": f"Bearer {stack.token()}"})
    assert response.status_code == 204
