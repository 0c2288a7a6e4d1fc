"""Double-texting through the local stack: runs started on a conversation whose run is still
active, over real HTTP, with the worker getting real SQS messages (delayed ones included)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx

from .test_run_lifecycle import wait_for_status
from .test_streaming import read_events

LONG = "[[scripted tokens=400 delay_ms=10]]"


def conversation() -> str:
    return "dt-" + uuid.uuid4().hex[:12]


def test_reject_is_the_default_409_names_the_active_run(stack, client):
    conv = conversation()
    first = stack.start(client, LONG, conversationId=conv)
    response = client.post(f"{stack.base_url}/v1/runs", headers=stack.headers(),
                           json={"task": "and another thing", "conversationId": conv})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conversation_busy" and error["activeRunId"] == first["runId"]
    client.post(f"{stack.base_url}/v1/runs/{first['runId']}/cancel", headers=stack.headers())


def test_enqueue_starts_when_the_active_run_ends_and_remembers_it(stack, client):
    conv = conversation()
    first = stack.start(client, "[[scripted tokens=60 delay_ms=10]]", conversationId=conv)
    second = stack.start(client, "[[scripted tokens=3]]", conversationId=conv, multitaskStrategy="enqueue")
    assert client.get(f"{stack.base_url}/v1/runs/{second['runId']}", headers=stack.headers()).json()["status"] == "queued"
    events = read_events(client, f"{stack.base_url}/v1/runs/{second['runId']}/stream", stack.headers())
    assert json.loads(events[-1].data) == {"status": "succeeded"}
    views = [client.get(f"{stack.base_url}/v1/runs/{r['runId']}", headers=stack.headers()).json() for r in (first, second)]
    assert views[0]["status"] == "succeeded"
    assert views[1]["startedAt"] >= views[0]["finishedAt"]  # one after the other, never side by side
    messages = client.get(f"{stack.base_url}/v1/conversations/{conv}/messages", headers=stack.headers()).json()["messages"]
    assert [m["runId"] for m in messages] == [first["runId"]] * 2 + [second["runId"]] * 2


def test_interrupt_cancels_the_active_run_keeps_its_output_then_runs(stack, client):
    conv = conversation()
    first = stack.start(client, LONG, conversationId=conv)
    wait_for_status(stack, client, first["runId"], {"running"})
    second = stack.start(client, "[[scripted tokens=3]]", conversationId=conv, multitaskStrategy="interrupt")
    first_events = read_events(client, f"{stack.base_url}/v1/runs/{first['runId']}/stream", stack.headers())
    assert json.loads(first_events[-1].data) == {"status": "cancelled"}
    second_events = read_events(client, f"{stack.base_url}/v1/runs/{second['runId']}/stream", stack.headers())
    assert json.loads(second_events[-1].data) == {"status": "succeeded"}
    partial = client.get(f"{stack.base_url}/v1/runs/{first['runId']}", headers=stack.headers()).json()["output"]
    assert partial
    messages = client.get(f"{stack.base_url}/v1/conversations/{conv}/messages", headers=stack.headers()).json()["messages"]
    assert messages[1] == {**messages[1], "role": "assistant", "content": partial, "runId": first["runId"]}


def test_multitask_strategy_without_a_conversation_is_400(stack, client):
    response = client.post(f"{stack.base_url}/v1/runs", headers=stack.headers(),
                           json={"task": "hi", "multitaskStrategy": "enqueue"})
    assert response.status_code == 400
    assert "conversationId" in response.json()["error"]["message"]


def test_a_chat_surface_queues_a_second_message_behind_the_first(stack, client):
    """The content/is_final surface's clients cannot send a strategy: their second message, sent
    while the first is still answering, waits its turn and remembers the first turn."""
    conv = conversation()
    headers = {"Authorization": f"Bearer {stack.token()}"}
    finals: dict[str, dict] = {}

    def chat(name: str, message: str) -> None:
        with httpx.Client(timeout=60) as own, own.stream(
                "POST", f"{stack.base_url}/chat/stream", headers=headers,
                json={"message": message, "conversation_id": conv}) as response:
            assert response.status_code == 200
            lines = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
            finals[name] = lines[-1]

    first = threading.Thread(target=chat, args=("first", "[[scripted tokens=60 delay_ms=10]]"))
    first.start()
    time.sleep(0.3)
    chat("second", "[[scripted tokens=3]]")
    first.join(30)
    assert finals["first"]["is_final"] and finals["second"]["is_final"]
    assert "error" not in finals["second"] or finals["second"]["error"] is None
    messages = client.get(f"{stack.base_url}/v1/conversations/{conv}/messages", headers=stack.headers()).json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == [
        "[[scripted tokens=60 delay_ms=10]]", "[[scripted tokens=3]]"]  # one after the other, in order
    assert len(messages) == 4
