"""Runs that end in other ways: cancelled, timed out, failed; and SQS delivering twice."""

from __future__ import annotations

import json
import os
import signal
import time

import boto3
import httpx

from devstack.readiness import stop
from devstack.resources import load_template

from .conftest import MAX_RUN_SECONDS, ROOT, start_stack
from .test_streaming import read_events


def wait_for_status(stack, client, run_id, statuses, timeout=15, org="my-org"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.get(f"{stack.base_url}/v1/runs/{run_id}", headers=stack.headers(org)).json()
        if view["status"] in statuses:
            return view
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {statuses}; last: {view}")


def test_cancel_closes_a_running_run_with_its_terminal_events(stack, client):
    run = stack.start(client, "[[scripted tokens=2000 delay_ms=20]]")
    wait_for_status(stack, client, run["runId"], {"running"})
    time.sleep(0.3)
    response = client.post(f"{stack.base_url}/v1/runs/{run['runId']}/cancel", headers=stack.headers())
    assert response.status_code == 200
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    assert events[-1].event == "end"
    assert json.loads(events[-1].data) == {"status": "cancelled"}  # a stream-only client can tell
    assert json.loads(events[-2].data)["type"] == "usage"
    view = wait_for_status(stack, client, run["runId"], {"cancelled"})
    assert 0 < len(view["output"]) < len("".join(f" {n}" for n in range(1, 2001)))
    assert client.post(f"{stack.base_url}/v1/runs/{run['runId']}/cancel", headers=stack.headers()).status_code == 200


def test_cancel_of_a_finished_run_is_409(stack, client):
    run = stack.start(client, "[[scripted tokens=2]]")
    read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    response = client.post(f"{stack.base_url}/v1/runs/{run['runId']}/cancel", headers=stack.headers())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_conflict"


def test_a_run_past_max_run_seconds_ends_expired_with_an_error_chunk(stack, client):
    run = stack.start(client, "[[scripted stall=60]]")
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    data = [json.loads(e.data) for e in events if e.event == "data"]
    assert data[0]["type"] == "error" and data[0]["code"] == "run_timed_out"
    assert str(MAX_RUN_SECONDS) in data[0]["message"]
    assert events[-1].event == "end"
    assert json.loads(events[-1].data) == {"status": "expired"}
    assert wait_for_status(stack, client, run["runId"], {"expired"})["error"]["code"] == "run_timed_out"


def test_a_model_stream_cut_mid_answer_is_continued_and_the_client_reads_one_whole_text(stack, client):
    run = stack.start(client, "[[scripted tokens=50 fail=interrupted after=10]]")
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    data = [json.loads(e.data) for e in events if e.event == "data"]
    text = "".join(d["text"] for d in data if d["type"] == "text")
    assert text == "".join(f" {n}" for n in range(1, 51))
    assert [d["reason"] for d in data if d["type"] == "interrupted"] == ["model_stream_interrupted"]
    assert sum(1 for e in events if e.event == "end") == 1
    finished = wait_for_status(stack, client, run["runId"], {"succeeded"})
    steps = [d for d in data if d["type"] in ("step_end", "interrupted")]
    assert finished["usage"]["outputTokens"] == sum(d["outputTokens"] for d in steps) == 50


def test_a_model_that_keeps_failing_ends_failed_with_its_error_code(stack, client):
    run = stack.start(client, "[[scripted tokens=50 fail=unavailable after=0]]")
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    data = [json.loads(e.data) for e in events if e.event == "data"]
    assert [d["type"] for d in data[-2:]] == ["error", "usage"]
    assert data[-2]["code"] == "model_unavailable"
    assert sum(1 for e in events if e.event == "end") == 1
    assert wait_for_status(stack, client, run["runId"], {"failed"})["status"] == "failed"


def test_duplicate_sqs_delivery_runs_the_agent_once(stack, client):
    run = stack.start(client, "[[scripted tokens=30 delay_ms=10]]")
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=stack.moto_endpoint)
    queue_url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("run-queue"))
    body = json.dumps({"runId": run["runId"], "orgId": "my-org"})
    for _ in range(2):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    events = read_events(client, f"{stack.base_url}/v1/runs/{run['runId']}/stream", stack.headers())
    time.sleep(1)  # let the duplicates be handled
    page = client.get(f"{stack.base_url}/v1/runs/{run['runId']}/events", headers=stack.headers()).json()
    assert len(page["events"]) == len(events)
    assert sum(1 for e in page["events"] if e["event"] == "end") == 1
    assert sum(1 for e in page["events"] if e["data"].get("type") == "usage") == 1
    text = "".join(e["data"]["text"] for e in page["events"] if e["data"].get("type") == "text")
    assert text == "".join(f" {n}" for n in range(1, 31))


def worker_processes(parent_pid: int) -> list[int]:
    """The stack's worker-loop processes (children of the `python -m devstack` process)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent_pid and b"devstack.worker_loop" in command:
            found.append(int(entry))
    return found


def test_a_run_whose_worker_is_killed_mid_answer_is_carried_on_by_a_new_worker(tmp_path_factory):
    stack, process = start_stack(tmp_path_factory, "worker-kill-stack", MAX_RUN_SECONDS="120")
    try:
        with httpx.Client(timeout=60) as client:
            run = stack.start(client, "[[scripted tokens=120 delay_ms=25]]")
            url = f"{stack.base_url}/v1/runs/{run['runId']}/stream"
            before = read_events(client, url, stack.headers(), stop_after=3)
            (first,) = worker_processes(process.pid)
            os.kill(first, signal.SIGKILL)
            killed_at = time.monotonic()

            phases = set()
            deadline = killed_at + 60
            while (view := client.get(f"{stack.base_url}/v1/runs/{run['runId']}", headers=stack.headers()).json())[
                    "attempts"] < 2:
                phases.add(view["phase"])
                assert time.monotonic() < deadline, f"nobody took the run over:\n{stack.log_tail()}"
                time.sleep(0.25)
            assert "recovering" in phases, "GET said the run was between workers"
            assert process.poll() is None, "the stack stayed up"
            assert [pid for pid in worker_processes(process.pid) if pid != first], "a new worker replaced the dead one"

            rest = read_events(client, url, {**stack.headers(), "Last-Event-ID": before[-1].id})
            # The reader's "recovering" status event is not a chunk of the log (it has no id of its own).
            events = [e for e in before + rest if '"type":"status"' not in e.data]
            assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
            assert sum(1 for e in events if e.event == "end") == 1
            data = [json.loads(e.data) for e in events if e.event == "data"]
            assert "".join(d["text"] for d in data if d["type"] == "text") == "".join(f" {n}" for n in range(1, 121))
            finished = wait_for_status(stack, client, run["runId"], {"succeeded"})
            assert finished["attempts"] == 2
            assert sum(1 for d in data if d["type"] == "usage") == 1
            assert "starting a new one" in stack.log_path.read_text()
            visibility = load_template(ROOT / "template.yaml")["Resources"]["RunQueue"]["Properties"]["VisibilityTimeout"]
            assert f"visibility {visibility} s" in stack.log_path.read_text(), "the local queue follows template.yaml"
    finally:
        stop(process)
