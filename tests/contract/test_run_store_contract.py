"""One suite, two adapters: the in-memory fake must behave exactly like DynamoDB (on a moto server).

A fake that drifts from the real adapter fails here, so unit tests built on fakes stay honest.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from runwire.adapters.dynamodb import DynamoDBRunStore
from runwire.adapters.memory import InMemoryRunStore
from runwire.core.models import EndChunk, RunError, RunRecord, RunRequest, RunStatus, TextChunk, Usage
from runwire.errors import ConditionFailedError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "dynamodb"])
def store_and_clock(request):
    clock = FakeClock()
    if request.param == "memory":
        return InMemoryRunStore(clock), clock
    resources = request.getfixturevalue("local_resources")
    client = request.getfixturevalue("dynamodb_client")
    return DynamoDBRunStore(client, resources.table_name, clock), clock


def new_run(clock, org="acme", retention=300, **changes) -> RunRecord:
    return RunRecord(
        run_id="run_" + uuid.uuid4().hex, org_id=org, user_id="u1", agent_id="ag_chat", status=RunStatus.QUEUED,
        request=RunRequest(task="hello", context={"k": [1, 2]}), created_at=clock(),
        expires_at=int(clock()) + retention, **changes,
    )


def test_created_run_reads_back_equal(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    assert store.get_run("acme", run.run_id) == run


def test_run_id_cannot_be_created_twice(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    with pytest.raises(ConditionFailedError):
        store.create_run(run)


def test_runs_are_scoped_by_org(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    assert store.get_run("other-org", run.run_id) is None
    assert store.read_chunks("other-org", run.run_id, after=0) == []


def test_expired_run_reads_as_missing_even_before_ttl_deletion(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock, retention=10)
    store.create_run(run)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="hi"), expires_at=run.expires_at)
    clock.now += 11
    assert store.get_run("acme", run.run_id) is None
    assert store.read_chunks("acme", run.run_id, after=0) == []
    with pytest.raises(ConditionFailedError):
        store.transition("acme", run.run_id, RunStatus.RUNNING)


def test_transitions_follow_the_state_machine(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    claimed = store.transition("acme", run.run_id, RunStatus.RUNNING, changes={"started_at": clock(), "lease_expires_at": clock() + 60})
    assert claimed.status is RunStatus.RUNNING and claimed.lease_expires_at == clock() + 60
    with pytest.raises(ConditionFailedError):
        store.transition("acme", run.run_id, RunStatus.RUNNING)  # a second claim loses


def test_only_one_of_many_concurrent_claims_wins(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    wins = []

    def claim():
        try:
            store.transition("acme", run.run_id, RunStatus.RUNNING)
            wins.append(1)
        except ConditionFailedError:
            pass

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_chunk_seq_is_written_at_most_once(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=run.expires_at)
    with pytest.raises(ConditionFailedError):
        store.append_chunk("acme", run.run_id, 1, TextChunk(text="b"), expires_at=run.expires_at)
    assert [c.chunk.text for c in store.read_chunks("acme", run.run_id, after=0)] == ["a"]


def test_read_chunks_after_n_is_exact_and_stops_at_a_gap(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    for seq in (1, 2, 3, 5):
        store.append_chunk("acme", run.run_id, seq, TextChunk(text=str(seq)), expires_at=run.expires_at)
    assert [c.seq for c in store.read_chunks("acme", run.run_id, after=0)] == [1, 2, 3]
    assert [c.seq for c in store.read_chunks("acme", run.run_id, after=1)] == [2, 3]
    assert [c.seq for c in store.read_chunks("acme", run.run_id, after=1, limit=1)] == [2]
    assert store.read_chunks("acme", run.run_id, after=3) == []
    assert [c.seq for c in store.read_chunks("acme", run.run_id, after=4)] == [5]


def test_finish_writes_end_and_status_together(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    store.transition("acme", run.run_id, RunStatus.RUNNING)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=run.expires_at)
    usage = Usage(model="m", input_tokens=3, output_tokens=4)
    error = RunError(code="model_overloaded", message="busy")
    ended = store.finish("acme", run.run_id, RunStatus.FAILED, expected=RunStatus.RUNNING, end_seq=2,
                         finished_at=clock(), usage=usage, error=error)
    assert ended.status is RunStatus.FAILED
    stored = store.get_run("acme", run.run_id)
    assert (stored.status, stored.usage, stored.error, stored.finished_at) == (RunStatus.FAILED, usage, error, clock())
    chunks = store.read_chunks("acme", run.run_id, after=0)
    assert chunks[-1].chunk == EndChunk(status=RunStatus.FAILED)


def test_finish_from_the_wrong_status_writes_nothing(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    store.transition("acme", run.run_id, RunStatus.RUNNING)
    with pytest.raises(ConditionFailedError):
        store.finish("acme", run.run_id, RunStatus.CANCELLED, expected=RunStatus.QUEUED, end_seq=1,
                     finished_at=clock(), usage=None, error=None)
    assert store.read_chunks("acme", run.run_id, after=0) == []
    assert store.get_run("acme", run.run_id).status is RunStatus.RUNNING


def test_finish_cannot_reuse_a_written_seq(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    store.transition("acme", run.run_id, RunStatus.RUNNING)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=run.expires_at)
    with pytest.raises(ConditionFailedError):
        store.finish("acme", run.run_id, RunStatus.SUCCEEDED, expected=RunStatus.RUNNING, end_seq=1,
                     finished_at=clock(), usage=None, error=None)
    assert store.get_run("acme", run.run_id).status is RunStatus.RUNNING


def test_cancel_flag_only_on_unfinished_runs(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    assert store.request_cancel("acme", run.run_id).cancel_requested is True
    store.transition("acme", run.run_id, RunStatus.RUNNING)
    store.finish("acme", run.run_id, RunStatus.SUCCEEDED, expected=RunStatus.RUNNING, end_seq=1,
                 finished_at=clock(), usage=None, error=None)
    with pytest.raises(ConditionFailedError):
        store.request_cancel("acme", run.run_id)


def test_deleted_run_is_gone(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    store.delete_run("acme", run.run_id)
    assert store.get_run("acme", run.run_id) is None


def test_an_item_over_dynamodbs_400_kb_limit_is_a_storage_error_and_not_stored(store_and_clock):
    from runwire.errors import StorageError

    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    with pytest.raises(StorageError):
        store.append_chunk("acme", run.run_id, 1, TextChunk(text="x" * 500_000), expires_at=run.expires_at)
    assert store.read_chunks("acme", run.run_id, after=0) == []
