"""The sweep function, invoked with events/sweep.json (what the EventBridge schedule sends), and the
local stack's stand-in for that schedule, against a moto table built from template.yaml."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from devstack.resources import LocalResources, create_local_resources, load_template
from devstack.schedule import DEFAULT_SWEEP_INTERVAL_SECONDS, LocalSchedule, sweep_interval_seconds
from devstack.worker_loop import LocalLambdaContext
from runwire.adapters.dynamodb import DynamoDBRunStore
from runwire.core.ending import ACTION_TIMED_OUT, iso, pending_action
from runwire.core.models import (
    EndChunk,
    ErrorChunk,
    RequiresActionChunk,
    RunRecord,
    RunRequest,
    RunStatus,
    Usage,
    UsageChunk,
)
from runwire.core.transcript import ToolCallBlock

ROOT = Path(__file__).resolve().parents[2]
ORG = "sweep-org"
USAGE = Usage(model="scripted", input_tokens=21, output_tokens=8)


def sample_event(name: str) -> dict:
    return json.loads((ROOT / "events" / name).read_text())


def sweep_context() -> LocalLambdaContext:
    return LocalLambdaContext.for_function("runwire-SweepFunction-local", timeout_seconds=60)


@pytest.fixture(scope="module")
def sweep_resources(moto_endpoint, aws_session) -> LocalResources:
    # A table of its own: the sweep's count is exact only if no other test left runs waiting in it.
    return create_local_resources(load_template(ROOT / "template.yaml"), aws_session, moto_endpoint,
                                  name_prefix="sweep-test")


@pytest.fixture(scope="module")
def sweeper_function(sweep_resources, moto_endpoint) -> Iterator[ModuleType]:
    saved = dict(os.environ)
    os.environ.update({"AWS_ENDPOINT_URL": moto_endpoint, "RUNS_TABLE_NAME": sweep_resources.table_name,
                       "RUN_QUEUE_URL": sweep_resources.queue_url})
    yield importlib.reload(importlib.import_module("functions.sweeper.app"))
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def store(dynamodb_client, sweep_resources) -> DynamoDBRunStore:
    return DynamoDBRunStore(dynamodb_client, sweep_resources.table_name, time.time)


def waiting_run(store: DynamoDBRunStore, *, action_expires_at: float) -> RunRecord:
    """A run created, claimed by a worker, and suspended waiting for a client tool's output (seq 1)."""
    now = time.time()
    run = RunRecord(
        run_id="run_" + uuid.uuid4().hex, org_id=ORG, user_id="u1", agent_id="ag_chat", status=RunStatus.QUEUED,
        request=RunRequest(task="Where am I?"), created_at=now, expires_at=int(now) + 600,
    )
    store.create_run(run)
    store.transition(ORG, run.run_id, RunStatus.RUNNING, changes={"started_at": now, "lease_expires_at": now + 120})
    action = pending_action(run.run_id, ToolCallBlock(id="toolu_1", name="get_location", input={}, executor="client"))
    return store.suspend(
        ORG, run.run_id, first_seq=1,
        chunks=[RequiresActionChunk(actions=[action.action], expires_at=iso(action_expires_at))],
        actions=[action], action_expires_at=action_expires_at, usage=USAGE, expires_at=int(now) + 600,
    )


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def status_of(store: DynamoDBRunStore, run: RunRecord) -> RunStatus | None:
    found = store.get_run(run.org_id, run.run_id)
    return found.status if found else None


def test_sweep_handler_expires_the_run_waiting_past_its_deadline_and_leaves_the_one_not_due(sweeper_function, store):
    overdue = waiting_run(store, action_expires_at=time.time() - 1)
    not_due = waiting_run(store, action_expires_at=time.time() + 3600)

    assert sweeper_function.handler(sample_event("sweep.json"), sweep_context()) == {"expired": 1, "requeued": 0}

    ended = store.get_run(ORG, overdue.run_id)
    assert ended.status is RunStatus.EXPIRED and ended.error == ACTION_TIMED_OUT and ended.finished_at is not None
    chunks = store.read_chunks(ORG, overdue.run_id, after=0, consistent=True)
    assert [stored.seq for stored in chunks] == [1, 2, 3, 4]
    assert [stored.chunk for stored in chunks[1:]] == [
        ErrorChunk(code="action_timed_out", message=ACTION_TIMED_OUT.message),
        UsageChunk(model=USAGE.model, input_tokens=USAGE.input_tokens, output_tokens=USAGE.output_tokens),
        EndChunk(status=RunStatus.EXPIRED),
    ]

    assert status_of(store, not_due) is RunStatus.REQUIRES_ACTION
    assert [stored.chunk.type for stored in store.read_chunks(ORG, not_due.run_id, after=0, consistent=True)] == [
        "requires_action"
    ]
    # The ended run left the WaitingRuns index; the waiting one is still in it, for a later sweep.
    assert store.overdue_waiting_runs(now=not_due.action_expires_at, limit=10) == [(ORG, not_due.run_id)]


def test_a_second_sweep_ends_nothing_more(sweeper_function, store):
    run = waiting_run(store, action_expires_at=time.time() - 1)
    assert sweeper_function.handler(sample_event("sweep.json"), sweep_context()) == {"expired": 1, "requeued": 0}
    assert sweeper_function.handler(sample_event("sweep.json"), sweep_context()) == {"expired": 0, "requeued": 0}
    assert len(store.read_chunks(ORG, run.run_id, after=0, consistent=True)) == 4  # one terminal sequence


def test_local_schedule_invokes_the_real_sweep_handler_until_stopped(sweeper_function, store):
    run = waiting_run(store, action_expires_at=time.time() - 1)
    schedule = LocalSchedule(sweeper_function.handler, 0.05, function_name="runwire-SweepFunction-local",
                             region="us-east-1", timeout_seconds=60)
    thread = schedule.start()
    try:
        assert wait_until(lambda: status_of(store, run) is RunStatus.EXPIRED, timeout=15)
    finally:
        schedule.stop()
        thread.join(timeout=15)
    assert not thread.is_alive() and schedule.invocations >= 1


def test_local_schedule_survives_a_failing_invocation():
    calls: list[dict] = []

    def handler(event: dict, context: LocalLambdaContext) -> None:
        calls.append(event)
        raise RuntimeError("DynamoDB is down")

    schedule = LocalSchedule(handler, 60, function_name="runwire-SweepFunction-local", region="eu-west-1",
                             timeout_seconds=60)
    assert schedule.invoke() is None and schedule.invoke() is None
    assert len(calls) == 2 and calls[0]["id"] != calls[1]["id"]
    assert set(calls[0]) == set(sample_event("sweep.json"))
    assert calls[0]["detail-type"] == "Scheduled Event" and calls[0]["region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, DEFAULT_SWEEP_INTERVAL_SECONDS), ("", DEFAULT_SWEEP_INTERVAL_SECONDS), ("0.25", 0.25), ("0", 0.0)],
    ids=["unset", "empty", "fraction", "off"],
)
def test_sweep_interval_comes_from_the_environment(value: str | None, seconds: float):
    assert sweep_interval_seconds({} if value is None else {"SWEEP_INTERVAL_SECONDS": value}) == seconds


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_sweep_interval_refuses_what_is_not_a_duration(value: str):
    with pytest.raises(ValueError, match="SWEEP_INTERVAL_SECONDS"):
        sweep_interval_seconds({"SWEEP_INTERVAL_SECONDS": value})


def test_the_sweep_sends_a_new_message_to_a_running_run_whose_worker_and_message_are_gone(
    sweeper_function, store, sweep_resources, aws_session, moto_endpoint
):
    from runwire.core.models import Lease

    now = time.time()
    run = RunRecord(run_id="run_" + uuid.uuid4().hex, org_id=ORG, user_id="u1", agent_id="ag_chat",
                    status=RunStatus.QUEUED, request=RunRequest(task="hi"), created_at=now, expires_at=int(now) + 600)
    store.create_run(run)
    # Claimed by a worker whose lease lapsed two minutes ago: it died, and no message brought another.
    store.claim(ORG, run.run_id, lease=Lease("dead", now - 120), now=now - 130, expires_at=int(now) + 600)
    assert sweeper_function.handler(sample_event("sweep.json"), sweep_context()) == {"expired": 0, "requeued": 1}
    sqs = aws_session.client("sqs", endpoint_url=moto_endpoint)
    received = sqs.receive_message(QueueUrl=sweep_resources.queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"]) for m in received] == [{"runId": run.run_id, "orgId": ORG}]


def test_local_stack_worker_loop_expires_overdue_runs_on_its_schedule(store, sweep_resources, moto_endpoint, tmp_path):
    run = waiting_run(store, action_expires_at=time.time() - 1)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
        "RUNS_TABLE_NAME": sweep_resources.table_name,
        "RUN_QUEUE_URL": sweep_resources.queue_url,
        "MODEL_PROVIDER": "scripted",
        "SWEEP_INTERVAL_SECONDS": "0.2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "worker_loop.log"
    with log.open("wb") as output:
        loop = subprocess.Popen([sys.executable, "-m", "devstack.worker_loop"], env=env, cwd=ROOT,
                                stdout=output, stderr=subprocess.STDOUT)
        try:
            expired = wait_until(lambda: status_of(store, run) is RunStatus.EXPIRED or loop.poll() is not None,
                                 timeout=60)
        finally:
            loop.terminate()
            try:
                loop.wait(timeout=10)
            except subprocess.TimeoutExpired:
                loop.kill()
                loop.wait()
    assert expired and status_of(store, run) is RunStatus.EXPIRED, log.read_text(errors="replace")[-4000:]
