"""Every client variant over real HTTP: sync, long poll, one-shot stream, conversation memory."""

from __future__ import annotations

import json
import time

from httpx_sse import connect_sse

from .test_run_lifecycle import wait_for_status
from .test_streaming import read_events


def test_sync_call_answers_200_with_the_finished_run(stack, client):
    response = client.post(f"{stack.base_url}/v1/runs/wait", json={"task": "What is 6 * 7?"}, headers=stack.headers())
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "succeeded"
    assert "42" in run["output"] and run["usage"]["outputTokens"] > 0


def test_sync_call_answers_202_with_urls_when_the_run_outlasts_wait_seconds(stack, client):
    response = client.post(
        f"{stack.base_url}/v1/runs/wait",
        json={"task": "[[scripted tokens=400 delay_ms=20]]", "waitSeconds": 1},
        headers=stack.headers(),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in {"queued", "running"}
    assert body["pollUrl"].endswith(f"/v1/runs/{body['runId']}") and body["streamUrl"].endswith("/stream")
    events = read_events(client, body["streamUrl"], stack.headers())
    assert events[-1].event == "end"


def test_sync_wait_seconds_above_the_gateway_limit_is_400(stack, client):
    response = client.post(f"{stack.base_url}/v1/runs/wait", json={"task": "x", "waitSeconds": 60}, headers=stack.headers())
    assert response.status_code == 400
    assert "waitSeconds" in response.json()["error"]["message"]


def test_long_poll_returns_at_the_first_event_not_at_its_wait(stack, client):
    # The model stalls 2 s, then streams for 4 s. A long poll asked to wait 15 s must come back with
    # the first event while the run is still running (an answer held for 15 s would find it done).
    run = stack.start(client, "[[scripted stall=2 tokens=40 delay_ms=100]]")
    page = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events",
                      params={"after": 0, "wait": 15}, headers=stack.headers()).json()
    assert page["events"] and page["events"][0]["seq"] == 1
    assert page["status"] == "running" and not page["done"]


def test_long_poll_with_nothing_new_answers_empty(stack, client):
    run = stack.start(client, "[[scripted stall=3 tokens=1]]")
    page = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events",
                      params={"after": 0, "wait": 0.5}, headers=stack.headers()).json()
    assert page["events"] == [] and page["lastSeq"] == 0 and not page["done"]
    page = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events",
                      params={"after": 0, "wait": 15}, headers=stack.headers()).json()
    assert page["events"], "the second long poll should have carried the first event"


def test_a_poll_past_the_end_of_a_finished_run_is_done_at_once(stack, client):
    run = stack.start(client, "[[scripted tokens=3]]")
    url = f"{stack.base_url}/v1/runs/{run['runId']}/events"
    first = client.get(url, params={"after": 0, "wait": 15}, headers=stack.headers()).json()
    while not first["done"]:
        first = client.get(url, params={"after": first["lastSeq"], "wait": 15}, headers=stack.headers()).json()
    again = client.get(url, params={"after": first["lastSeq"], "wait": 15}, headers=stack.headers())
    page = again.json()
    assert page["done"] and page["events"] == [] and page["status"] == "succeeded"
    assert again.elapsed.total_seconds() < 15, "a finished run has nothing more to wait for"


def test_long_poll_wait_above_20_is_400(stack, client):
    run = stack.start(client, "[[scripted tokens=1]]")
    response = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events", params={"wait": 21}, headers=stack.headers())
    assert response.status_code == 400


def one_shot(stack, client, body, *, read: int | None = None, params=None):
    """POST /v1/runs/stream; read `read` events (all when None) and hang up. Returns (events, run id)."""
    events = []
    with connect_sse(client, "POST", f"{stack.base_url}/v1/runs/stream", json=body,
                     headers=stack.headers(), params=params) as source:
        assert source.response.status_code == 200
        run_id = source.response.headers["x-run-id"]
        for event in source.iter_sse():
            events.append(event)
            if event.event == "end" or (read is not None and len(events) >= read):
                break
    return events, run_id


def test_one_shot_stream_creates_and_streams_the_run_in_one_request(stack, client):
    events, run_id = one_shot(stack, client, {"task": "[[scripted tokens=12]]"})
    assert run_id.startswith("run_")
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "end"
    text = "".join(json.loads(e.data).get("text", "") for e in events if e.event == "data")
    assert text == "".join(f" {n}" for n in range(1, 13))


def test_one_shot_stream_cancels_the_run_when_the_client_disconnects(stack, client):
    _, run_id = one_shot(stack, client, {"task": "[[scripted tokens=3000 delay_ms=10]]"}, read=3)
    view = wait_for_status(stack, client, run_id, {"cancelled"}, timeout=10)
    assert view["status"] == "cancelled"


def test_one_shot_stream_with_on_disconnect_continue_keeps_running(stack, client):
    _, run_id = one_shot(stack, client, {"task": "[[scripted tokens=60 delay_ms=10]]", "onDisconnect": "continue"}, read=2)
    view = wait_for_status(stack, client, run_id, {"succeeded", "cancelled"}, timeout=15)
    assert view["status"] == "succeeded"
    assert view["output"] == "".join(f" {n}" for n in range(1, 61))


def test_conversation_memory_carries_a_name_to_the_next_turn(stack, client):
    conversation = f"conv-alex-{time.time_ns()}"
    for task in ("My name is Alex.", "What is my name?"):
        response = client.post(f"{stack.base_url}/v1/runs/wait", json={"task": task, "conversationId": conversation},
                               headers=stack.headers())
        assert response.status_code == 200
    assert "Your name is Alex" in response.json()["output"]
    messages = client.get(f"{stack.base_url}/v1/conversations/{conversation}/messages", headers=stack.headers()).json()
    assert [m["role"] for m in messages["messages"]] == ["user", "assistant", "user", "assistant"]
    assert messages["messages"][0]["content"] == "My name is Alex."
    assert "Your name is Alex" in messages["messages"][3]["content"]


def test_explicit_history_replaces_the_loaded_one(stack, client):
    conversation = f"conv-explicit-{time.time_ns()}"
    client.post(f"{stack.base_url}/v1/runs/wait", json={"task": "My name is Alex.", "conversationId": conversation},
                headers=stack.headers())
    response = client.post(
        f"{stack.base_url}/v1/runs/wait",
        json={"task": "What is my name?", "conversationId": conversation,
              "conversationHistory": [{"role": "user", "content": "My name is Sam."},
                                      {"role": "assistant", "content": "Hi Sam."}]},
        headers=stack.headers(),
    )
    assert "Your name is Sam" in response.json()["output"]


def test_conversations_are_per_org(stack, client):
    conversation = f"conv-org-{time.time_ns()}"
    client.post(f"{stack.base_url}/v1/runs/wait", json={"task": "My name is Alex.", "conversationId": conversation},
                headers=stack.headers("my-org"))
    other = client.get(f"{stack.base_url}/v1/conversations/{conversation}/messages", headers=stack.headers("other-org")).json()
    assert other["messages"] == []
    response = client.post(f"{stack.base_url}/v1/runs/wait", json={"task": "What is my name?", "conversationId": conversation},
                           headers=stack.headers("other-org"))
    assert "don't know your name" in response.json()["output"]
