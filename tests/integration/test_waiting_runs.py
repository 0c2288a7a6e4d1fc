"""Runs that wait for their client, over real HTTP on the local stack: client tools, approvals,
partial answers, readers held open across the wait, resume across it, cancel while waiting."""

from __future__ import annotations

import json
import threading
import time

import boto3
import httpx
import pytest
from httpx_sse import connect_sse

from devstack.readiness import stop

from .conftest import start_stack
from .test_run_lifecycle import wait_for_status
from .test_streaming import read_events

LOCATION_TOOL = {
    "name": "get_location",
    "description": "The user's current city, from the browser.",
    "inputSchema": {"type": "object", "properties": {}},
}


class Reader(threading.Thread):
    """A stream client that stays connected from the start of the run to its end."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.events: list = []
        self.comments = 0

    def run(self) -> None:
        with httpx.Client(timeout=60) as client, connect_sse(client, "GET", self.url, headers=self.headers) as source:
            for event in source.iter_sse():
                self.events.append(event)
                if event.event == "end":
                    return

    def data(self) -> list[dict]:
        return [json.loads(e.data) for e in self.events if e.event == "data"]


def follow(stack, run) -> Reader:
    reader = Reader(f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    reader.start()
    return reader


def answer(stack, client, run_id, path, body, org="my-org"):
    return client.post(f"{stack.base_url}/v1/runs/{run_id}/{path}", json=body, headers=stack.headers(org))


def assert_one_numbered_log(events) -> None:
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1)), "ids run 1, 2, 3… with no gap"
    assert sum(e.event == "end" for e in events) == 1 and events[-1].event == "end"


def test_client_tool_round_trip_on_one_open_stream(stack, client):
    run = stack.start(client, "Where am I? Use get_location.", clientMcpTools=[LOCATION_TOOL])
    reader = follow(stack, run)
    view = wait_for_status(stack, client, run["runId"], {"requires_action"})
    (action,) = view["pendingActions"]
    assert action["kind"] == "client_tool" and action["name"] == "get_location"
    assert view["actionExpiresAt"]
    time.sleep(0.5)
    assert reader.is_alive(), "the reader stays connected while the run waits"
    kinds = [d["type"] for d in reader.data()]
    assert kinds[-2:] == ["step_end", "requires_action"] and kinds[0] == "tool_use"
    assert reader.data()[0]["executor"] == "client"

    response = answer(stack, client, run["runId"], "tool-outputs",
                      {"toolOutputs": [{"toolCallId": action["toolCallId"], "output": {"city": "Lisbon"}}]})
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "running", "succeeded")
    reader.join(20)
    assert not reader.is_alive()
    assert_one_numbered_log(reader.events)
    data = reader.data()
    result = next(d for d in data if d["type"] == "tool_result")
    assert result == {"type": "tool_result", "id": action["toolCallId"], "output": {"city": "Lisbon"}, "isError": False}
    assert "Lisbon" in "".join(d["text"] for d in data if d["type"] == "text")
    final = wait_for_status(stack, client, run["runId"], {"succeeded"})
    assert final["pendingActions"] is None and final["usage"]["outputTokens"] > 0


def test_approved_tool_runs_with_the_input_it_was_approved_for(stack, client):
    run = stack.start(client, "What is 17 * 23?", approvalRequired=["calculator"])
    reader = follow(stack, run)
    (action,) = wait_for_status(stack, client, run["runId"], {"requires_action"})["pendingActions"]
    assert action["kind"] == "approval" and action["input"] == {"expression": "17 * 23"}
    assert action["approvalId"].startswith("apr_")
    body = {"approvals": [{"approvalId": action["approvalId"], "approved": True}]}
    assert answer(stack, client, run["runId"], "approvals", body).status_code == 202
    assert answer(stack, client, run["runId"], "approvals", body).status_code == 202, "the same answer is idempotent"
    changed = {"approvals": [{"approvalId": action["approvalId"], "approved": False}]}
    conflict = answer(stack, client, run["runId"], "approvals", changed)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "not_waiting"
    reader.join(20)
    assert_one_numbered_log(reader.events)
    result = next(d for d in reader.data() if d["type"] == "tool_result")
    assert result["output"] == {"expression": "17 * 23", "result": 391}


def test_denied_tool_never_runs_and_the_model_hears_why(stack, client):
    run = stack.start(client, "What is 6 * 7?", approvalRequired=["calculator"])
    (action,) = wait_for_status(stack, client, run["runId"], {"requires_action"})["pendingActions"]
    body = {"approvals": [{"approvalId": action["approvalId"], "approved": False, "reason": "not now"}]}
    assert answer(stack, client, run["runId"], "approvals", body).status_code == 202
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    data = [json.loads(e.data) for e in events if e.event == "data"]
    uses = [d["id"] for d in data if d["type"] == "tool_use"]
    results = {d["id"]: d for d in data if d["type"] == "tool_result"}
    assert set(uses) == set(results), "every tool_use has its tool_result"
    assert results[action["toolCallId"]]["output"] == {"denied": True, "reason": "not now"}
    assert results[action["toolCallId"]]["isError"] is True
    assert "denied: not now" in "".join(d["text"] for d in data if d["type"] == "text")


def test_answers_the_run_is_not_waiting_for_are_409_and_other_orgs_get_404(stack, client):
    run = stack.start(client, "What is 2 + 2?", approvalRequired=["calculator"])
    wait_for_status(stack, client, run["runId"], {"requires_action"})
    unknown = answer(stack, client, run["runId"], "approvals", {"approvals": [{"approvalId": "apr_0", "approved": True}]})
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "not_waiting"
    other_run = stack.start(client, "What is 3 + 3?", approvalRequired=["calculator"])
    (foreign,) = wait_for_status(stack, client, other_run["runId"], {"requires_action"})["pendingActions"]
    crossed = answer(stack, client, run["runId"], "approvals",
                     {"approvals": [{"approvalId": foreign["approvalId"], "approved": True}]})
    assert crossed.status_code == 409, "an approval id is bound to its run"
    wrong_kind = answer(stack, client, run["runId"], "tool-outputs",
                        {"toolOutputs": [{"toolCallId": foreign["toolCallId"], "output": 1}]})
    assert wrong_kind.status_code == 409
    elsewhere = answer(stack, client, run["runId"], "approvals",
                       {"approvals": [{"approvalId": foreign["approvalId"], "approved": True}]}, org="other-org")
    assert elsewhere.status_code == 404
    malformed = answer(stack, client, run["runId"], "approvals", {"approvals": [{"approvalId": "x", "approve": True}]})
    assert malformed.status_code == 400 and "error" in malformed.json()
    for waiting in (run, other_run):
        client.post(f"{stack.base_url}/v1/runs/{waiting['runId']}/cancel", headers=stack.headers())


def test_partial_answers_are_kept_and_the_run_resumes_when_all_are_in(stack, client):
    run = stack.start(client, "What is 6*7? Use get_location too.", clientMcpTools=[LOCATION_TOOL],
                      approvalRequired=["calculator"])
    actions = wait_for_status(stack, client, run["runId"], {"requires_action"})["pendingActions"]
    by_kind = {a["kind"]: a for a in actions}
    assert set(by_kind) == {"client_tool", "approval"}
    first = answer(stack, client, run["runId"], "tool-outputs",
                   {"toolOutputs": [{"toolCallId": by_kind["client_tool"]["toolCallId"], "output": "Porto"}]})
    assert first.status_code == 202
    assert first.json()["status"] == "requires_action"
    assert [a["kind"] for a in first.json()["pendingActions"]] == ["approval"]
    second = answer(stack, client, run["runId"], "approvals",
                    {"approvals": [{"approvalId": by_kind["approval"]["approvalId"], "approved": True}]})
    assert second.status_code == 202
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    assert_one_numbered_log(events)
    text = "".join(json.loads(e.data).get("text", "") for e in events if e.event == "data")
    assert "42" in text and "Porto" in text


def test_resume_with_last_event_id_across_the_wait_has_no_gap_and_no_duplicate(stack, client):
    run = stack.start(client, "Where am I? Use get_location.", clientMcpTools=[LOCATION_TOOL])
    url = f"{stack.base_url}/ai/stream/{run['streamId']}"
    view = wait_for_status(stack, client, run["runId"], {"requires_action"})
    before = read_events(client, url, stack.headers(), stop_after=view["lastSeq"])
    assert json.loads(before[-1].data)["type"] == "requires_action"
    (action,) = view["pendingActions"]
    answer(stack, client, run["runId"], "tool-outputs",
           {"toolOutputs": [{"toolCallId": action["toolCallId"], "output": "Faro", "isError": False}]})
    after = read_events(client, url, {**stack.headers(), "Last-Event-ID": before[-1].id})
    assert_one_numbered_log(before + after)
    polled = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events?after=0", headers=stack.headers()).json()
    assert [e["seq"] for e in polled["events"]] == [int(e.id) for e in before + after] and polled["done"]


def test_poll_endpoint_shows_the_wait_and_long_polls_into_the_continuation(stack, client):
    run = stack.start(client, "Where am I? Use get_location.", clientMcpTools=[LOCATION_TOOL])
    view = wait_for_status(stack, client, run["runId"], {"requires_action"})
    page = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events?after=0", headers=stack.headers()).json()
    assert page["status"] == "requires_action" and not page["done"]
    assert page["events"][-1]["data"]["type"] == "requires_action"
    (action,) = view["pendingActions"]
    answered_at = [0.0]

    def answer_soon() -> None:
        time.sleep(0.5)
        answered_at[0] = time.monotonic()
        answer(stack, client, run["runId"], "tool-outputs",
               {"toolOutputs": [{"toolCallId": action["toolCallId"], "output": "Braga"}]})

    threading.Thread(target=answer_soon, daemon=True).start()
    waited = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events?after={page['lastSeq']}&wait=15",
                        headers=stack.headers()).json()
    assert answered_at[0] > 0 and waited["events"], "the long poll answered with the continuation"
    assert waited["events"][0]["seq"] == page["lastSeq"] + 1


def test_cancel_while_waiting_ends_the_run_for_its_readers(stack, client):
    run = stack.start(client, "What is 5 * 5?", approvalRequired=["calculator"])
    reader = follow(stack, run)
    wait_for_status(stack, client, run["runId"], {"requires_action"})
    response = client.post(f"{stack.base_url}/v1/runs/{run['runId']}/cancel", headers=stack.headers())
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    reader.join(20)
    assert not reader.is_alive()
    assert_one_numbered_log(reader.events)
    assert [d["type"] for d in reader.data()][-2:] == ["requires_action", "usage"]
    assert json.loads(reader.events[-1].data).get("status", "cancelled") == "cancelled"


def test_sync_wait_returns_when_the_run_needs_its_client(stack, client):
    response = client.post(f"{stack.base_url}/v1/runs/wait", headers=stack.headers(), json={
        "task": "Where am I? Use get_location.", "clientMcpTools": [LOCATION_TOOL], "waitSeconds": 20,
    })
    assert response.status_code == 200
    assert response.json()["status"] == "requires_action" and response.json()["pendingActions"][0]["name"] == "get_location"
    client.post(f"{stack.base_url}/v1/runs/{response.json()['runId']}/cancel", headers=stack.headers())


def test_chat_events_stream_shows_a_client_tool_call_and_stays_open_while_the_run_waits(stack, client):
    lines: list[str] = []
    body = {"agent_id": "ag_c47e7c97_b2f2", "message": "Where am I? Use get_location.",
            "clientMcpTools": [LOCATION_TOOL]}
    with client.stream("POST", f"{stack.base_url}/chat/stream", json=body, headers=stack.headers()) as response:
        assert response.status_code == 200
        run_id = response.headers["x-run-id"]
        stream = response.iter_lines()
        for line in stream:
            lines.append(line)
            if line.startswith("data: ") and json.loads(line[6:])["type"] == "tool_call":
                break
        view = wait_for_status(stack, client, run_id, {"requires_action"})
        (action,) = view["pendingActions"]
        answer(stack, client, run_id, "tool-outputs",
               {"toolOutputs": [{"toolCallId": action["toolCallId"], "output": "Coimbra"}]})
        for line in stream:
            lines.append(line)
            if line.startswith("data: ") and json.loads(line[6:])["type"] in ("done", "error"):
                break
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert events[0] == {"type": "tool_call", "name": "get_location", "args": {}}
    assert {"type": "tool_result", "name": "get_location", "result": "Coimbra"} in events
    assert events[-1]["type"] == "done"


@pytest.mark.parametrize("body", [
    {"approvalRequired": ["web_search"]},
    {"approvalRequired": ["get_location"], "clientMcpTools": [LOCATION_TOOL]},
    {"clientMcpTools": [{**LOCATION_TOOL, "name": "calculator"}]},
])
def test_tool_settings_that_cannot_be_honoured_are_refused_at_the_start(stack, client, body):
    response = client.post(f"{stack.base_url}/v1/runs", json={"task": "hi", **body}, headers=stack.headers())
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


def test_an_operators_agent_can_require_approval_for_its_tools(stack, client):
    run = stack.start(client, "What is 9 * 9?", agentRole="careful")
    (action,) = wait_for_status(stack, client, run["runId"], {"requires_action"})["pendingActions"]
    assert action["kind"] == "approval" and action["name"] == "calculator"
    client.post(f"{stack.base_url}/v1/runs/{run['runId']}/cancel", headers=stack.headers())


def test_one_shot_stream_stays_open_across_the_wait(stack, client):
    body = {"task": "Where am I? Use get_location.", "clientMcpTools": [LOCATION_TOOL]}
    with connect_sse(client, "POST", f"{stack.base_url}/v1/runs/stream", json=body, headers=stack.headers()) as source:
        run_id = source.response.headers["x-run-id"]
        events = []
        for event in source.iter_sse():
            events.append(event)
            if event.event == "data" and json.loads(event.data)["type"] == "requires_action":
                (action,) = json.loads(event.data)["actions"]
                answer(stack, client, run_id, "tool-outputs",
                       {"toolOutputs": [{"toolCallId": action["toolCallId"], "output": "Evora"}]})
            if event.event == "end":
                break
    assert_one_numbered_log(events)
    assert "Evora" in "".join(json.loads(e.data).get("text", "") for e in events if e.event == "data")


def test_content_final_stream_stays_open_while_the_run_waits_and_then_finishes(stack, client):
    body = {"message": "Where am I? Use get_location.", "clientMcpTools": [LOCATION_TOOL]}
    events = []
    with client.stream("POST", f"{stack.base_url}/chat/stream", json=body, headers=stack.headers()) as response:
        assert response.status_code == 200
        run_id = response.headers["x-run-id"]
        (action,) = wait_for_status(stack, client, run_id, {"requires_action"})["pendingActions"]
        answer(stack, client, run_id, "tool-outputs",
               {"toolOutputs": [{"toolCallId": action["toolCallId"], "output": "Sintra"}]})
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["is_final"]:
                    break
    assert "Sintra" in "".join(e["content"] for e in events)
    assert events[-1]["is_final"] is True and events[-1]["metrics"]["output_tokens"] > 0


@pytest.fixture(scope="module")
def impatient_stack(tmp_path_factory):
    stack, process = start_stack(tmp_path_factory, "impatient-stack", ACTION_TIMEOUT_SECONDS="2",
                                 SWEEP_INTERVAL_SECONDS="0.5")
    yield stack
    stop(process)


def test_a_run_nobody_answers_is_expired_by_the_sweep_and_its_reader_gets_the_end(impatient_stack, client):
    stack = impatient_stack
    run = stack.start(client, "Where am I? Use get_location.", clientMcpTools=[LOCATION_TOOL])
    wait_for_status(stack, client, run["runId"], {"requires_action"})
    # From here on nothing reads the run through the API (a read would end it too): only the
    # local sweep can, and the table says when it has.
    table = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.moto_endpoint)
    table_name = next(name for name in table.list_tables()["TableNames"] if name.endswith("-runs"))
    key = {"pk": {"S": f"RUN#my-org#{run['runId']}"}, "sk": {"S": "RUN"}}
    deadline = time.monotonic() + 20
    while table.get_item(TableName=table_name, Key=key)["Item"]["status"]["S"] != "expired":
        assert time.monotonic() < deadline, "the sweep never ended the run"
        time.sleep(0.2)
    reader = follow(stack, run)
    reader.join(20)
    assert not reader.is_alive(), "the reader got its end"
    assert_one_numbered_log(reader.events)
    kinds = [d["type"] for d in reader.data()]
    assert kinds[-3:] == ["requires_action", "error", "usage"]
    assert reader.data()[-2]["code"] == "action_timed_out"
    view = client.get(f"{stack.base_url}/v1/runs/{run['runId']}", headers=stack.headers()).json()
    assert view["status"] == "expired" and view["error"]["code"] == "action_timed_out"
    late = answer(stack, client, run["runId"], "tool-outputs",
                  {"toolOutputs": [{"toolCallId": reader.data()[0]["id"], "output": "too late"}]})
    assert late.status_code == 409 and late.json()["error"]["code"] == "not_waiting"
