"""The whole stack with MODEL_PROVIDER=anthropic: the worker's real anthropic SDK talks to a local
server speaking the Messages streaming protocol (devstack.messages_server)."""

from __future__ import annotations

import json

import pytest

from devstack.messages_server import DEFAULT_TEXT, MessagesServer, Reply
from devstack.readiness import stop

from .conftest import start_stack
from .test_run_lifecycle import wait_for_status
from .test_streaming import read_events


@pytest.fixture(scope="module")
def messages_server():
    with MessagesServer() as server:
        yield server


@pytest.fixture(scope="module")
def anthropic_stack(tmp_path_factory, messages_server):
    stack, process = start_stack(
        tmp_path_factory, "anthropic-stack",
        MODEL_PROVIDER="anthropic", ANTHROPIC_BASE_URL=messages_server.base_url,
        ANTHROPIC_API_KEY="sk-ant-local-test", DEFAULT_MODEL="claude-default-test",
    )
    yield stack
    stop(process)


def stream_chunks(stack, client, body):
    response = client.post(f"{stack.base_url}/ai/agent/stream", json=body, headers=stack.headers())
    assert response.status_code == 202, response.text
    events = read_events(client, f"{stack.base_url}/ai/stream/{response.json()['streamId']}", stack.headers())
    assert events[-1].event == "end" and sum(e.event == "end" for e in events) == 1
    return [json.loads(e.data) for e in events if e.event == "data"], response.json()["runId"]


def test_streamed_answer_usage_and_request_reach_the_model(anthropic_stack, messages_server, client):
    messages_server.script(Reply.text("Paris is the capital of France.", token_delay=0.01))
    before = len(messages_server.requests)
    chunks, _ = stream_chunks(anthropic_stack, client, {
        "task": "Capital of France?", "agentInstructions": "Answer in one sentence.",
        "settings": {"model": "claude-override-test", "maxTokens": 300},
    })
    assert "".join(c["text"] for c in chunks if c["type"] == "text") == "Paris is the capital of France."
    usage = chunks[-1]
    assert usage["type"] == "usage" and usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    sent = messages_server.requests[before]
    assert sent.api_key == "sk-ant-local-test"
    assert sent.body["model"] == "claude-override-test" and sent.body["max_tokens"] == 300
    assert "Answer in one sentence." in sent.body["system"]
    assert sent.body["messages"][-1] == {"role": "user", "content": "Capital of France?"}
    assert {t["name"] for t in sent.body["tools"]} == {"calculator", "current_time"}


def test_default_model_is_used_without_an_override(anthropic_stack, messages_server, client):
    before = len(messages_server.requests)
    stream_chunks(anthropic_stack, client, {"task": "hi"})
    assert messages_server.requests[before].body["model"] == "claude-default-test"


def test_tool_round_trip_through_the_real_sdk(anthropic_stack, messages_server, client):
    messages_server.script(Reply.tool_use("calculator", {"expression": "17 * 23"}), Reply.text("It is 391."))
    before = len(messages_server.requests)
    chunks, _ = stream_chunks(anthropic_stack, client, {"task": "What is 17 * 23?"})
    tool_use = next(c for c in chunks if c["type"] == "tool_use")
    assert tool_use["name"] == "calculator" and tool_use["input"] == {"expression": "17 * 23"}
    assert next(c for c in chunks if c["type"] == "tool_result")["output"]["result"] == 391
    second = messages_server.requests[before + 1].body["messages"]
    result_block = second[-1]["content"][0]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == tool_use["id"]
    assert json.loads(result_block["content"])["result"] == 391


def test_a_rejected_request_ends_the_run_failed_at_once(anthropic_stack, messages_server, client):
    messages_server.script(Reply.http_error(401))
    before = len(messages_server.requests)
    chunks, run_id = stream_chunks(anthropic_stack, client, {"task": "hello"})
    assert next(c for c in chunks if c["type"] == "error")["code"] == "model_request_rejected"
    view = client.get(f"{anthropic_stack.base_url}/v1/runs/{run_id}", headers=anthropic_stack.headers()).json()
    assert view["status"] == "failed" and view["error"]["code"] == "model_request_rejected"
    assert len(messages_server.requests) - before == 1  # not retried: it cannot succeed


@pytest.mark.parametrize(
    "fault",
    [
        Reply.http_error(529, "overloaded_error"),
        Reply.http_error(429, "rate_limit_error", headers={"retry-after": "1"}),
        Reply.http_error(500, "api_error"),
        Reply.error_event("overloaded_error", after_tokens=3),
        Reply.cut(after_tokens=3),
    ],
    ids=["529", "429-retry-after", "500", "overloaded-mid-stream", "connection-cut"],
)
def test_a_transient_model_fault_is_retried_and_the_client_reads_one_whole_answer(
    anthropic_stack, messages_server, client, fault
):
    messages_server.script(fault)
    before = len(messages_server.requests)
    chunks, run_id = stream_chunks(anthropic_stack, client, {"task": "hello"})
    assert not [c for c in chunks if c["type"] == "error"]
    assert "".join(c["text"] for c in chunks if c["type"] == "text") == DEFAULT_TEXT
    view = client.get(f"{anthropic_stack.base_url}/v1/runs/{run_id}", headers=anthropic_stack.headers()).json()
    assert view["status"] == "succeeded"
    requests = messages_server.requests[before:]
    assert len(requests) == 2
    if any(c["type"] == "interrupted" for c in chunks):  # cut mid-answer: the retry continued the text shown
        assert requests[1].body["messages"][-1]["role"] == "assistant"


def test_a_model_that_stays_overloaded_ends_the_run_failed_after_max_attempts(anthropic_stack, messages_server, client):
    messages_server.script(*[Reply.http_error(529, "overloaded_error")] * 3)
    before = len(messages_server.requests)
    chunks, run_id = stream_chunks(anthropic_stack, client, {"task": "hello"})
    assert next(c for c in chunks if c["type"] == "error")["code"] == "model_overloaded"
    view = client.get(f"{anthropic_stack.base_url}/v1/runs/{run_id}", headers=anthropic_stack.headers()).json()
    assert view["status"] == "failed" and view["error"]["code"] == "model_overloaded"
    assert len(messages_server.requests) - before == 3


def test_cancel_closes_the_model_stream(anthropic_stack, messages_server, client):
    messages_server.script(Reply.stall(30, after_tokens=2))
    response = client.post(f"{anthropic_stack.base_url}/v1/runs", json={"task": "slow"}, headers=anthropic_stack.headers())
    run_id = response.json()["runId"]
    url = f"{anthropic_stack.base_url}/v1/runs/{run_id}/stream"
    first = read_events(client, url, anthropic_stack.headers(), stop_after=1)
    assert json.loads(first[0].data)["type"] == "text"
    client.post(f"{anthropic_stack.base_url}/v1/runs/{run_id}/cancel", headers=anthropic_stack.headers())
    rest = read_events(client, url, {**anthropic_stack.headers(), "Last-Event-ID": first[-1].id})
    assert rest[-1].event == "end"
    view = client.get(f"{anthropic_stack.base_url}/v1/runs/{run_id}", headers=anthropic_stack.headers()).json()
    assert view["status"] == "cancelled"
    assert messages_server.requests[-1].disconnected.wait(5)


def start_waiting_run(stack, client, body):
    response = client.post(f"{stack.base_url}/v1/runs", json=body, headers=stack.headers())
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    view = wait_for_status(stack, client, run_id, {"requires_action"})
    return run_id, view["pendingActions"]


def test_client_tool_output_reaches_the_model_in_the_next_call(anthropic_stack, messages_server, client):
    messages_server.script(
        Reply.tool_use("get_location", {"precision": "city"}, text_before="Let me look.", tool_use_id="toolu_loc"),
        Reply.text("You are in Lisbon."),
    )
    before = len(messages_server.requests)
    run_id, (action,) = start_waiting_run(anthropic_stack, client, {
        "task": "Where am I?",
        "clientMcpTools": [{"name": "get_location", "description": "The user's city.",
                            "inputSchema": {"type": "object", "properties": {"precision": {"type": "string"}}}}],
    })
    assert action == {"kind": "client_tool", "toolCallId": "toolu_loc", "name": "get_location",
                      "input": {"precision": "city"}}
    assert "get_location" in {t["name"] for t in messages_server.requests[before].body["tools"]}
    output = {"toolOutputs": [{"toolCallId": "toolu_loc", "output": {"city": "Lisbon"}}]}
    response = client.post(f"{anthropic_stack.base_url}/v1/runs/{run_id}/tool-outputs", json=output,
                           headers=anthropic_stack.headers())
    assert response.status_code == 202
    events = read_events(client, f"{anthropic_stack.base_url}/v1/runs/{run_id}/stream", anthropic_stack.headers())
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    chunks = [json.loads(e.data) for e in events if e.event == "data"]
    assert "".join(c["text"] for c in chunks if c["type"] == "text") == "Let me look.You are in Lisbon."
    second = messages_server.requests[before + 1].body["messages"]
    assert second[-2] == {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_loc", "name": "get_location", "input": {"precision": "city"}},
    ]}
    (result,) = second[-1]["content"]
    assert result["tool_use_id"] == "toolu_loc" and json.loads(result["content"]) == {"city": "Lisbon"}
    assert result["is_error"] is False
    usage = chunks[-1]
    steps = [c for c in chunks if c["type"] == "step_end"]
    assert len(steps) == 2 and usage["inputTokens"] == sum(s["inputTokens"] for s in steps)


def test_a_denied_tool_reaches_the_model_as_an_error_result_with_the_reason(anthropic_stack, messages_server, client):
    messages_server.script(
        Reply.tool_use("calculator", {"expression": "2 ** 10"}, tool_use_id="toolu_calc_denied"),
        Reply.text("Understood, I will not calculate it."),
    )
    before = len(messages_server.requests)
    run_id, (action,) = start_waiting_run(anthropic_stack, client, {"task": "2 ** 10?", "approvalRequired": ["calculator"]})
    decision = {"approvals": [{"approvalId": action["approvalId"], "approved": False, "reason": "too costly"}]}
    assert client.post(f"{anthropic_stack.base_url}/v1/runs/{run_id}/approvals", json=decision,
                       headers=anthropic_stack.headers()).status_code == 202
    read_events(client, f"{anthropic_stack.base_url}/v1/runs/{run_id}/stream", anthropic_stack.headers())
    (result,) = messages_server.requests[before + 1].body["messages"][-1]["content"]
    assert result == {"type": "tool_result", "tool_use_id": "toolu_calc_denied", "content": "denied: too costly",
                      "is_error": True}
