"""Streaming over real HTTP: resume without gaps or duplicates, many readers, the poll fallback."""

from __future__ import annotations

import json
import threading

import httpx
from httpx_sse import connect_sse


def read_events(client, url, headers, *, stop_after=None):
    events = []
    with connect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.headers["cache-control"] == "no-cache"
        assert source.response.headers["x-accel-buffering"] == "no"
        for event in source.iter_sse():
            events.append(event)
            if event.event == "end" or (stop_after is not None and len(events) >= stop_after):
                break
    return events


def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(stack, client):
    run = stack.start(client, "[[scripted tokens=60 delay_ms=20]]")
    url = f"{stack.base_url}/ai/stream/{run['streamId']}"
    first = read_events(client, url, stack.headers(), stop_after=3)
    rest = read_events(client, url, {**stack.headers(), "Last-Event-ID": first[-1].id})
    seqs = [int(e.id) for e in first + rest]
    assert seqs == list(range(1, len(seqs) + 1))
    assert rest[-1].event == "end"
    text = "".join(json.loads(e.data)["text"] for e in first + rest if e.event == "data" and '"text"' in e.data and json.loads(e.data)["type"] == "text")
    assert text == "".join(f" {n}" for n in range(1, 61))


def test_after_query_parameter_replays_exactly_the_events_after_n(stack, client):
    run = stack.start(client, "[[scripted tokens=10]]")
    full = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    tail = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream?after=2", stack.headers())
    assert [(e.id, e.data) for e in tail] == [(e.id, e.data) for e in full[2:]]


def test_stream_of_a_finished_run_resumed_past_its_end_is_204(stack, client):
    run = stack.start(client, "[[scripted tokens=3]]")
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    response = client.get(
        f"{stack.base_url}/v1/runs/{run['runId']}/stream", headers={**stack.headers(), "Last-Event-ID": events[-1].id}
    )
    assert response.status_code == 204


def test_several_readers_each_get_every_event(stack, client):
    run = stack.start(client, "[[scripted tokens=40 delay_ms=10]]")
    url = f"{stack.base_url}/ai/stream/{run['streamId']}"
    results: list[list[str]] = []

    def reader():
        with httpx.Client(timeout=30) as own:
            results.append([f"{e.id}:{e.data}" for e in read_events(own, url, stack.headers())])

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 3 and results[0] == results[1] == results[2]
    assert results[0][-1].endswith(':{"status":"succeeded"}')


def test_poll_endpoint_pages_through_every_event(stack, client):
    run = stack.start(client, "[[scripted tokens=25 delay_ms=10]]")
    after, seen, done = 0, [], False
    for _ in range(500):
        page = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events", params={"after": after}, headers=stack.headers()).json()
        seen += page["events"]
        after, done = page["lastSeq"], page["done"]
        if done:
            break
        threading.Event().wait(0.05)
    assert done
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1] == {"seq": len(seen), "event": "end", "data": {"status": "succeeded"}}
    assert seen[-2]["data"]["type"] == "usage"


def test_run_status_reports_output_usage_and_last_seq(stack, client):
    run = stack.start(client, "[[scripted tokens=5]]")
    read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    view = client.get(f"{stack.base_url}/v1/runs/{run['runId']}", headers=stack.headers()).json()
    assert view["status"] == "succeeded"
    assert view["output"] == " 1 2 3 4 5"
    assert view["usage"]["outputTokens"] == 5
    assert view["lastSeq"] >= 3 and view["finishedAt"] and view["startedAt"]


def test_tool_use_and_tool_result_are_streamed(stack, client):
    run = stack.start(client, "What is (12 + 30) * 2?")
    events = read_events(client, f"{stack.base_url}/ai/stream/{run['streamId']}", stack.headers())
    chunks = [json.loads(e.data) for e in events if e.event == "data"]
    tool_use = next(c for c in chunks if c["type"] == "tool_use")
    tool_result = next(c for c in chunks if c["type"] == "tool_result")
    assert tool_use["name"] == "calculator" and tool_result["id"] == tool_use["id"]
    assert tool_result["output"]["result"] == 84
    assert "84" in "".join(c["text"] for c in chunks if c["type"] == "text")


def test_browser_style_auth_with_cookie_and_orgid_query(stack, client):
    run = stack.start(client, "[[scripted tokens=3]]")
    cookies = {"access_token": stack.token()}
    with httpx.Client(timeout=30, cookies=cookies) as browser:
        events = read_events(browser, f"{stack.base_url}/ai/stream/{run['streamId']}?orgid=my-org", {})
    assert events[-1].event == "end"
