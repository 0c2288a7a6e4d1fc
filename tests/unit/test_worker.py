"""The worker's guarantees, against in-memory fakes: one terminal sequence per run, no matter how it ends."""

import threading
import time

import pytest

from runwire.adapters.memory import InMemoryRunQueue, InMemoryRunStore
from runwire.adapters.scripted_provider import ScriptedProvider
from runwire.core.agents import default_catalog
from runwire.core.chunks import CoalescingPolicy
from runwire.core.models import Caller, EndChunk, ErrorChunk, RunRequest, RunStatus, TextChunk, UsageChunk
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.core.tools import default_tools
from runwire.core.worker import Outcome, RunWorker, WorkerPolicy
from runwire.errors import QueueUnavailableError, RunConflictError, RunNotFoundError

CALLER = Caller(user_id="u1", org_id="acme")


@pytest.fixture
def system():
    store = InMemoryRunStore(time.time)
    queue = InMemoryRunQueue()
    service = RunService(store, queue, default_catalog(), RunServicePolicy(retention_seconds=300), time.time)

    def make_worker(max_run_seconds=30.0, delay=0.002):
        return RunWorker(
            store,
            ScriptedProvider(time.time, token_delay_seconds=delay),
            default_catalog(),
            default_tools(time.time),
            WorkerPolicy(max_run_seconds=max_run_seconds, cancel_check_seconds=0.05,
                         coalescing=CoalescingPolicy(window_seconds=0.05)),
            time.time,
        )

    return store, queue, service, make_worker


def chunks_of(store, run):
    return [c.chunk for c in store.read_chunks(CALLER.org_id, run.run_id, after=0, limit=10_000)]


def assert_one_terminal_sequence(chunks, status):
    ends = [c for c in chunks if isinstance(c, EndChunk)]
    assert len(ends) == 1 and chunks[-1] == ends[0] and ends[0].status is status


def test_successful_run_ends_with_usage_then_end(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=30]]"))
    assert make_worker().process(queue.messages[0]) is Outcome.EXECUTED
    chunks = chunks_of(store, run)
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == "".join(f" {n}" for n in range(1, 31))
    assert isinstance(chunks[-2], UsageChunk) and chunks[-2].output_tokens == 30
    assert_one_terminal_sequence(chunks, RunStatus.SUCCEEDED)
    assert service.get(CALLER, run.run_id).status is RunStatus.SUCCEEDED


def test_token_deltas_are_coalesced_into_far_fewer_writes(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=100 delay_ms=5]]"))
    make_worker().process(queue.messages[0])
    text_chunks = [c for c in chunks_of(store, run) if isinstance(c, TextChunk)]
    assert len(text_chunks) < 30  # 100 deltas in ~0.5 s with a 50 ms window


def test_model_failure_ends_failed_with_error_usage_end(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=20 fail=overloaded after=3]]"))
    make_worker().process(queue.messages[0])
    chunks = chunks_of(store, run)
    assert [type(c).__name__ for c in chunks[-3:]] == ["ErrorChunk", "UsageChunk", "EndChunk"]
    assert isinstance(chunks[-3], ErrorChunk) and chunks[-3].code == "model_overloaded"
    assert_one_terminal_sequence(chunks, RunStatus.FAILED)
    assert service.get(CALLER, run.run_id).error.code == "model_overloaded"


def test_run_past_its_time_limit_ends_expired(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted stall=30]]"))
    worker = threading.Thread(target=make_worker(max_run_seconds=0.3).process, args=(queue.messages[0],))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the worker waited on the stalled model instead of ending the run"
    chunks = chunks_of(store, run)
    assert isinstance(chunks[0], ErrorChunk) and chunks[0].code == "run_timed_out"
    assert_one_terminal_sequence(chunks, RunStatus.EXPIRED)


def test_cancel_stops_a_running_run(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=1000 delay_ms=10]]"))
    worker = threading.Thread(target=make_worker().process, args=(queue.messages[0],))
    worker.start()
    deadline = time.monotonic() + 5
    while service.get(CALLER, run.run_id).status is not RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    service.cancel(CALLER, run.run_id)
    worker.join(timeout=5)
    assert not worker.is_alive()
    chunks = chunks_of(store, run)
    assert_one_terminal_sequence(chunks, RunStatus.CANCELLED)
    assert sum(isinstance(c, TextChunk) for c in chunks) > 0
    assert "1000" not in "".join(c.text for c in chunks if isinstance(c, TextChunk))


def test_cancel_of_a_queued_run_ends_it_without_a_worker(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    assert service.cancel(CALLER, run.run_id).status is RunStatus.CANCELLED
    assert_one_terminal_sequence(chunks_of(store, run), RunStatus.CANCELLED)
    assert make_worker().process(queue.messages[0]) is Outcome.DUPLICATE
    assert service.cancel(CALLER, run.run_id).status is RunStatus.CANCELLED  # idempotent


def test_cancel_of_a_finished_run_is_a_conflict(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    make_worker().process(queue.messages[0])
    with pytest.raises(RunConflictError):
        service.cancel(CALLER, run.run_id)


def test_duplicate_delivery_runs_once(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=20]]"))
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(make_worker().process(queue.messages[0]))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(o.value for o in outcomes) == ["duplicate", "duplicate", "executed"]
    chunks = chunks_of(store, run)
    assert_one_terminal_sequence(chunks, RunStatus.SUCCEEDED)
    assert sum(isinstance(c, UsageChunk) for c in chunks) == 1


def test_orphaned_run_is_ended_by_the_next_delivery(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    store.transition(CALLER.org_id, run.run_id, RunStatus.RUNNING,
                     changes={"started_at": time.time() - 500, "lease_expires_at": time.time() - 1})
    assert make_worker().process(queue.messages[0]) is Outcome.RECOVERED
    chunks = chunks_of(store, run)
    assert isinstance(chunks[0], ErrorChunk) and chunks[0].code == "worker_lost"
    assert_one_terminal_sequence(chunks, RunStatus.FAILED)


def test_tool_call_is_streamed_as_tool_use_then_tool_result(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="What is 17 * 23?"))
    make_worker().process(queue.messages[0])
    chunks = chunks_of(store, run)
    kinds = [c.type for c in chunks]
    assert kinds[:2] == ["tool_use", "tool_result"]
    assert chunks[1].output["result"] == 391
    assert "391" in "".join(c.text for c in chunks if isinstance(c, TextChunk))


def test_failed_enqueue_leaves_nothing_behind(system):
    store, queue, service, make_worker = system
    queue.fail_next = True
    with pytest.raises(QueueUnavailableError):
        service.start(CALLER, RunRequest(task="hello"))
    assert store._runs == {}


def test_another_orgs_run_is_not_found(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    with pytest.raises(RunNotFoundError):
        service.get(Caller(user_id="u2", org_id="other"), run.run_id)


def test_a_run_whose_agent_was_removed_ends_failed_not_orphaned(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    record = store._runs[(CALLER.org_id, run.run_id)]
    store._runs[(CALLER.org_id, run.run_id)] = record.model_copy(update={"agent_id": "ag_removed"})
    assert make_worker().process(queue.messages[0]) is Outcome.EXECUTED
    chunks = chunks_of(store, run)
    assert isinstance(chunks[0], ErrorChunk) and chunks[0].code == "unknown_agent"
    assert_one_terminal_sequence(chunks, RunStatus.FAILED)


def test_an_oversized_request_is_refused_before_anything_is_stored(system):
    store, queue, service, make_worker = system
    from runwire.errors import RequestTooLargeError

    huge = RunRequest.model_validate({"task": "x", "images": [{"data": "A" * 400_000, "mimeType": "image/png"}]})
    with pytest.raises(RequestTooLargeError):
        service.start(CALLER, huge)
    assert store._runs == {} and queue.messages == []


def test_a_malformed_run_id_is_not_found_without_asking_the_store(system):
    store, queue, service, make_worker = system
    with pytest.raises(RunNotFoundError):
        service.get(CALLER, "x" * 5000)


def test_a_claim_extends_the_run_past_one_redelivery_and_its_retention(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=1]]"))
    before = time.time()
    make_worker(max_run_seconds=30).process(queue.messages[0])
    stored = store.get_run(CALLER.org_id, run.run_id)
    policy = WorkerPolicy(max_run_seconds=30)
    assert stored.expires_at >= int(before + 30 + policy.lease_grace_seconds + policy.redelivery_seconds + 300)
    assert all(c.seq for c in store.read_chunks(CALLER.org_id, run.run_id, after=0))  # chunks readable too


def test_a_chunk_put_retried_after_it_committed_counts_as_written():
    from runwire.core.chunks import ChunkWriter
    from runwire.errors import ConditionFailedError

    class LostAnswerStore(InMemoryRunStore):
        """Commits the first put, then answers as if the SDK's retry of it had lost the condition."""

        def __init__(self, clock):
            super().__init__(clock)
            self.lost = False

        def append_chunk(self, org_id, run_id, seq, chunk, *, expires_at):
            stored = super().append_chunk(org_id, run_id, seq, chunk, expires_at=expires_at)
            if not self.lost:
                self.lost = True
                raise ConditionFailedError("the retry found its own item")
            return stored

    store = LostAnswerStore(time.time)
    service = RunService(store, InMemoryRunQueue(), default_catalog(), RunServicePolicy(), time.time)
    run = service.start(CALLER, RunRequest(task="x"))
    writer = ChunkWriter(store, CALLER.org_id, run.run_id, expires_at=run.expires_at)
    assert writer.write(TextChunk(text="a")).seq == 1
    assert writer.write(TextChunk(text="b")).seq == 2
    with pytest.raises(ConditionFailedError):  # a different chunk at a taken seq: a second writer
        ChunkWriter(store, CALLER.org_id, run.run_id, expires_at=run.expires_at).write(TextChunk(text="zzz"))
