"""Listing runs and conversations and deleting a conversation, over real HTTP against the local stack
(the worker writes the turns, moto serves the indexes built from template.yaml)."""

from __future__ import annotations

import uuid

from .test_run_lifecycle import wait_for_status
from .test_streaming import read_events


def finish(stack, client, org, task, **body) -> dict:
    run = stack.start(client, task, org=org, **body)
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers(org))
    assert events[-1].event == "end"
    return client.get(f"{stack.base_url}/v1/runs/{run['runId']}", headers=stack.headers(org)).json()


def every_page(stack, client, org, path, key, **params) -> tuple[list[dict], int]:
    items, pages, cursor = [], 0, None
    while True:
        response = client.get(f"{stack.base_url}{path}", headers=stack.headers(org),
                              params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        items += body[key]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            return items, pages


def test_an_orgs_runs_are_listed_newest_first_across_pages_and_by_filter(stack, client):
    org = "list-" + uuid.uuid4().hex[:10]
    conversation = str(uuid.uuid4())
    in_conversation = [finish(stack, client, org, "[[scripted tokens=3]]", conversationId=conversation)["runId"]
                       for _ in range(2)]
    alone = finish(stack, client, org, "[[scripted tokens=3]]")["runId"]
    finish(stack, client, "someone-else", "[[scripted tokens=3]]")

    runs, pages = every_page(stack, client, org, "/v1/runs", "runs", limit=2)
    assert [r["runId"] for r in runs] == [alone, *in_conversation[::-1]] and pages == 2
    assert {r["status"] for r in runs} == {"succeeded"} and all(r["usage"] for r in runs)
    assert [r["conversationId"] for r in runs] == [None, conversation, conversation]

    mine, _ = every_page(stack, client, org, "/v1/runs", "runs", conversationId=conversation, limit=1)
    assert [r["runId"] for r in mine] == in_conversation[::-1]
    assert every_page(stack, client, org, "/v1/runs", "runs", status="running")[0] == []

    response = client.get(f"{stack.base_url}/v1/runs", headers=stack.headers(org), params={"status": "finished"})
    assert response.status_code == 400 and "status" in response.json()["error"]["message"]


def test_a_conversation_is_listed_with_its_latest_reply_and_deleted_once_its_run_has_ended(stack, client):
    org = "conv-" + uuid.uuid4().hex[:10]
    conversation = str(uuid.uuid4())
    finish(stack, client, org, "[[scripted tokens=3]]", conversationId=conversation)
    latest = finish(stack, client, org, "[[scripted tokens=4]]", conversationId=conversation)

    (listed,) = every_page(stack, client, org, "/v1/conversations", "conversations")[0]
    assert (listed["conversationId"], listed["lastRunId"], listed["activeRunId"]) == (
        conversation, latest["runId"], None)
    assert listed["lastMessage"] == latest["output"][:200] and listed["lastMessage"]

    running = stack.start(client, "[[scripted tokens=2000 delay_ms=20]]", org=org, conversationId=conversation)
    wait_for_status(stack, client, running["runId"], {"running"}, org=org)
    url = f"{stack.base_url}/v1/conversations/{conversation}"
    busy = client.delete(url, headers=stack.headers(org))
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "conversation_busy")
    (listed,) = every_page(stack, client, org, "/v1/conversations", "conversations")[0]
    assert listed["activeRunId"] == running["runId"]

    client.post(f"{stack.base_url}/v1/runs/{running['runId']}/cancel", headers=stack.headers(org))
    wait_for_status(stack, client, running["runId"], {"cancelled"}, org=org)
    assert client.delete(url, headers=stack.headers("someone-else")).status_code == 404
    assert client.delete(url, headers=stack.headers(org)).status_code == 204
    messages = client.get(f"{url}/messages", headers=stack.headers(org)).json()["messages"]
    assert messages == []
    assert every_page(stack, client, org, "/v1/conversations", "conversations")[0] == []
    gone = client.delete(url, headers=stack.headers(org))
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "conversation_not_found")
    # Its runs stay readable (and listed) until they expire.
    assert len(every_page(stack, client, org, "/v1/runs", "runs", conversationId=conversation)[0]) == 3
