"""The worker's guarantees, against in-memory fakes: one terminal sequence per run, no matter how it
ends, and a run that waits for its client carries on where it stopped."""

import threading
import time
from dataclasses import dataclass

import pytest

from runwire.adapters.memory import InMemoryRunQueue, InMemoryRunStore
from runwire.adapters.scripted_provider import ScriptedProvider
from runwire.core.actions import ActionService, WaitSweeper
from runwire.core.agents import default_catalog
from runwire.core.chunks import CoalescingPolicy
from runwire.core.lease import LeasePolicy
from runwire.core.models import (
    ApprovalDecision,
    Caller,
    EndChunk,
    ErrorChunk,
    InterruptedChunk,
    Lease,
    RequiresActionChunk,
    RunMessage,
    RunRequest,
    RunStatus,
    StepEndChunk,
    TextChunk,
    ToolOutput,
    ToolResultChunk,
    ToolUseChunk,
    Usage,
    UsageChunk,
)
from runwire.core.ports import ToolCallRequested
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.core.tools import default_tools
from runwire.core.worker import Outcome, RunWorker, WorkerPolicy
from runwire.errors import (
    InvalidRequestError,
    NotWaitingError,
    QueueUnavailableError,
    RunConflictError,
    RunNotFoundError,
)

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


def test_a_model_cut_off_mid_answer_is_continued_into_one_text_with_the_usage_of_both_attempts(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=20 fail=overloaded after=3]]"))
    make_worker().process(queue.messages[0])
    chunks = chunks_of(store, run)
    text = "".join(c.text for c in chunks if isinstance(c, TextChunk))
    assert text == "".join(f" {n}" for n in range(1, 21))  # no word repeated, none missing
    interrupted = [c for c in chunks if isinstance(c, InterruptedChunk)]
    assert [c.reason for c in interrupted] == ["model_overloaded"] and interrupted[0].output_tokens == 3
    assert_one_terminal_sequence(chunks, RunStatus.SUCCEEDED)
    usage = service.get(CALLER, run.run_id).usage
    step = next(c for c in chunks if isinstance(c, StepEndChunk))
    assert usage.output_tokens == 3 + step.output_tokens == 20
    assert usage.input_tokens == interrupted[0].input_tokens + step.input_tokens


def test_a_model_that_keeps_failing_ends_failed_after_max_attempts_with_error_usage_end(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=20 fail=overloaded after=0]]"))
    make_worker().process(queue.messages[0])
    chunks = chunks_of(store, run)
    assert [type(c).__name__ for c in chunks] == ["InterruptedChunk"] * 3 + ["ErrorChunk", "UsageChunk", "EndChunk"]
    assert isinstance(chunks[-3], ErrorChunk) and chunks[-3].code == "model_overloaded"
    assert isinstance(chunks[-2], UsageChunk) and chunks[-2].input_tokens == sum(c.input_tokens for c in chunks[:3])
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


class FreezingStore(InMemoryRunStore):
    """Freezes the first worker before its `freeze_at`-th chunk write, its heartbeat too (as SIGSTOP
    would), until `thaw` is set; other workers write as usual."""

    def __init__(self, clock, freeze_at: int):
        super().__init__(clock)
        self.freeze_at = freeze_at
        self.frozen_owner: str | None = None
        self.frozen = threading.Event()
        self.thaw = threading.Event()
        self._writes_by: dict[str, int] = {}

    def append_chunk(self, org_id, run_id, seq, chunk, *, expires_at, owner=None):
        if owner is not None and self.frozen_owner in (None, owner):
            self._writes_by[owner] = self._writes_by.get(owner, 0) + 1
            if self._writes_by[owner] == self.freeze_at:
                self.frozen_owner = owner
                self.frozen.set()
                self.thaw.wait(30)
        return super().append_chunk(org_id, run_id, seq, chunk, expires_at=expires_at, owner=owner)

    def renew_lease(self, org_id, run_id, *, lease, live_usage):
        if lease.owner == self.frozen_owner:
            self.thaw.wait(30)
        return super().renew_lease(org_id, run_id, lease=lease, live_usage=live_usage)


FAST_LEASE = LeasePolicy(lease_seconds=1.0, renew_seconds=0.2, message_visibility_seconds=2)


def take_over_worker(store):
    return RunWorker(store, ScriptedProvider(time.time, token_delay_seconds=0.002), default_catalog(),
                     default_tools(time.time), WorkerPolicy(max_run_seconds=30, cancel_check_seconds=0.05, lease=FAST_LEASE,
                                                            coalescing=CoalescingPolicy(window_seconds=0.01)), time.time)


def worker_in_background(store, task: str):
    """(service, run, the first worker's outcomes, its thread, the run's message): a run started and
    a worker running it on a thread of its own."""
    queue = InMemoryRunQueue()
    service = RunService(store, queue, default_catalog(), RunServicePolicy(retention_seconds=300), time.time)
    run = service.start(CALLER, RunRequest(task=task))
    outcomes: list[Outcome] = []
    message = queue.messages[0]
    thread = threading.Thread(target=lambda: outcomes.append(take_over_worker(store).process(message)))
    thread.start()
    return service, run, outcomes, thread, message


def test_a_frozen_workers_run_is_taken_over_continued_once_and_the_frozen_worker_writes_nothing_after():
    store = FreezingStore(time.time, freeze_at=4)
    service, run, first, frozen, message = worker_in_background(store, "[[scripted tokens=40 delay_ms=5]]")
    assert store.frozen.wait(10)
    assert take_over_worker(store).process(message) is Outcome.DUPLICATE  # its lease still holds
    time.sleep(FAST_LEASE.lease_seconds + 0.1)
    assert service.get(CALLER, run.run_id).status is RunStatus.RUNNING
    assert store.get_run(CALLER.org_id, run.run_id).lease_lapsed(time.time())

    assert take_over_worker(store).process(message) is Outcome.RECOVERED
    store.thaw.set()
    frozen.join(10)
    assert first == [Outcome.SUPERSEDED]

    chunks = chunks_of(store, run)
    text = "".join(c.text for c in chunks if isinstance(c, TextChunk))
    assert text == "".join(f" {n}" for n in range(1, 41))  # no word repeated or missing at the seam
    assert_one_terminal_sequence(chunks, RunStatus.SUCCEEDED)
    finished = service.get(CALLER, run.run_id)
    assert finished.attempts == 2
    assert finished.usage.output_tokens == sum(c.output_tokens for c in chunks if isinstance(c, StepEndChunk | InterruptedChunk))


def test_a_take_over_logs_the_tokens_the_dead_worker_used_beyond_its_log(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    dead = Lease("dead-worker", time.time() + 60)
    store.claim(CALLER.org_id, run.run_id, lease=dead, now=time.time(), expires_at=int(time.time() + 600))
    # Its last heartbeat: 120 input and 7 output tokens into a step it never logged, then it died.
    store.renew_lease(CALLER.org_id, run.run_id, lease=Lease("dead-worker", time.time() - 1),
                      live_usage=Usage(model="scripted-1", input_tokens=120, output_tokens=7))
    assert take_over_worker(store).process(queue.messages[0]) is Outcome.RECOVERED
    chunks = chunks_of(store, run)
    assert chunks[0] == InterruptedChunk(reason="worker_lost", model="scripted-1", input_tokens=120, output_tokens=7)
    assert_one_terminal_sequence(chunks, RunStatus.SUCCEEDED)
    step = next(c for c in chunks if isinstance(c, StepEndChunk))
    assert service.get(CALLER, run.run_id).usage.input_tokens == 120 + step.input_tokens


def test_a_run_whose_workers_keep_dying_ends_failed_worker_lost_after_max_attempts(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    owner = "worker-1"
    store.claim(CALLER.org_id, run.run_id, lease=Lease(owner, time.time() - 1), now=time.time(),
                expires_at=int(time.time() + 600))
    for n in range(2, FAST_LEASE.max_attempts + 2):  # each of MAX_ATTEMPTS workers died in turn
        store.take_over(CALLER.org_id, run.run_id, lease=Lease(f"worker-{n}", time.time() - 0.5),
                        previous_owner=owner, now=time.time())
        owner = f"worker-{n}"
    assert take_over_worker(store).process(queue.messages[0]) is Outcome.RECOVERED
    chunks = chunks_of(store, run)
    assert isinstance(chunks[0], ErrorChunk) and chunks[0].code == "worker_lost"
    assert_one_terminal_sequence(chunks, RunStatus.FAILED)
    assert service.get(CALLER, run.run_id).error.code == "worker_lost"


def test_tool_call_is_streamed_as_tool_use_then_tool_result(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="What is 17 * 23?"))
    make_worker().process(queue.messages[0])
    chunks = chunks_of(store, run)
    kinds = [c.type for c in chunks]
    assert kinds[:3] == ["tool_use", "step_end", "tool_result"]
    assert chunks[2].output["result"] == 391
    assert kinds.count("step_end") == 2  # one per model call: the tool call, then the answer
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
    run = service.start(CALLER, RunRequest(task="[[scripted stall=10]]"))
    before = time.time()
    worker = threading.Thread(target=make_worker(max_run_seconds=30).process, args=(queue.messages[0],), daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while service.get(CALLER, run.run_id).status is not RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    running = store.get_run(CALLER.org_id, run.run_id)
    policy = WorkerPolicy(max_run_seconds=30)
    takeovers = policy.lease.max_attempts * (policy.lease.lease_seconds + policy.lease.message_visibility_seconds)
    assert running.expires_at >= int(before + 30 + takeovers + policy.redelivery_seconds + 300)
    service.cancel(CALLER, run.run_id)
    worker.join(5)


def test_a_finished_run_stays_readable_for_its_retention_counted_from_its_end(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="[[scripted tokens=1]]"))
    make_worker(max_run_seconds=30).process(queue.messages[0])
    finished = store.get_run(CALLER.org_id, run.run_id)
    assert finished.status is RunStatus.SUCCEEDED
    assert finished.expires_at == int(finished.finished_at + WorkerPolicy().retention_seconds)
    assert all(c.seq for c in store.read_chunks(CALLER.org_id, run.run_id, after=0))  # chunks readable too


def test_a_cancelled_queued_run_is_kept_for_its_retention_from_the_cancel(system):
    store, queue, service, make_worker = system
    run = service.start(CALLER, RunRequest(task="hello"))
    cancelled = service.cancel(CALLER, run.run_id)
    assert cancelled.expires_at == int(cancelled.finished_at + 300)


def test_a_chunk_put_retried_after_it_committed_counts_as_written():
    from runwire.core.chunks import ChunkWriter
    from runwire.errors import ConditionFailedError

    class LostAnswerStore(InMemoryRunStore):
        """Commits the first put, then answers as if the SDK's retry of it had lost the condition."""

        def __init__(self, clock):
            super().__init__(clock)
            self.lost = False

        def append_chunk(self, org_id, run_id, seq, chunk, *, expires_at, owner=None):
            stored = super().append_chunk(org_id, run_id, seq, chunk, expires_at=expires_at, owner=owner)
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


# --- runs that wait for their client: client tools, approvals, answers, cancel and timeout ------
ACTION_TIMEOUT = 600.0
GET_LOCATION = {"name": "get_location", "description": "Where the user is, from their device."}


class SteppingClock:
    """Wall time plus a jump the test controls: the worker's threads see time pass as usual, and a
    test moves past a deadline without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Waits:
    store: InMemoryRunStore
    queue: InMemoryRunQueue
    service: RunService
    actions: ActionService
    worker: RunWorker
    clock: SteppingClock

    def start(self, **body) -> str:
        return self.service.start(CALLER, RunRequest.model_validate(body)).run_id

    def deliver(self, run_id: str) -> Outcome:
        """Hand the run's latest message to the worker, as SQS would."""
        message = self.queue.messages[-1]
        assert message == RunMessage(run_id=run_id, org_id=CALLER.org_id)
        return self.worker.process(message)

    def chunks(self, run_id: str) -> list:
        return [c.chunk for c in self.store.read_chunks(CALLER.org_id, run_id, after=0, limit=10_000)]

    def requested(self, run_id: str) -> RequiresActionChunk:
        return [c for c in self.chunks(run_id) if isinstance(c, RequiresActionChunk)][-1]


@pytest.fixture
def waits():
    clock = SteppingClock()
    store = InMemoryRunStore(clock)
    queue = InMemoryRunQueue()
    service = RunService(store, queue, default_catalog(), RunServicePolicy(retention_seconds=300), clock)
    worker = RunWorker(
        store, ScriptedProvider(clock, token_delay_seconds=0.001), default_catalog(), default_tools(clock),
        WorkerPolicy(max_run_seconds=30.0, cancel_check_seconds=0.05, action_timeout_seconds=ACTION_TIMEOUT,
                     coalescing=CoalescingPolicy(window_seconds=0.05)),
        clock,
    )
    return Waits(store, queue, service, ActionService(store, queue, clock, service.get), worker, clock)


def text_of(chunks) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextChunk))


def assert_whole_log(store, run_id, status):
    """Seqs 1..N with no gap, one end (the last chunk), every tool call answered, usage = sum of the steps."""
    seqs = sorted(store._chunks[(CALLER.org_id, run_id)])
    assert seqs == list(range(1, len(seqs) + 1))
    chunks = [c.chunk for c in store.read_chunks(CALLER.org_id, run_id, after=0, limit=10_000)]
    assert len(chunks) == len(seqs)
    assert_one_terminal_sequence(chunks, status)
    calls = [c.id for c in chunks if isinstance(c, ToolUseChunk)]
    assert sorted(calls) == sorted(c.id for c in chunks if isinstance(c, ToolResultChunk))
    steps = [c for c in chunks if isinstance(c, StepEndChunk)]
    [usage] = [c for c in chunks if isinstance(c, UsageChunk)]
    assert (usage.input_tokens, usage.output_tokens) == (sum(s.input_tokens for s in steps),
                                                         sum(s.output_tokens for s in steps))
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    return chunks


def test_a_client_tool_suspends_the_run_and_its_output_resumes_it(waits):
    run_id = waits.start(task="Where am I? Use get_location.", clientMcpTools=[GET_LOCATION])
    assert waits.deliver(run_id) is Outcome.SUSPENDED
    waiting = waits.chunks(run_id)
    assert [c.type for c in waiting] == ["tool_use", "step_end", "requires_action"]
    call = waiting[0]
    assert (call.name, call.executor) == ("get_location", "client")
    assert [a.tool_call_id for a in waiting[-1].actions] == [call.id]
    assert waits.service.get(CALLER, run_id).status is RunStatus.REQUIRES_ACTION

    answer = waits.actions.submit_tool_outputs(CALLER, run_id, [ToolOutput(tool_call_id=call.id, output={"city": "Paris"})])
    assert answer.resumed and len(waits.queue.messages) == 2
    assert waits.deliver(run_id) is Outcome.EXECUTED

    chunks = assert_whole_log(waits.store, run_id, RunStatus.SUCCEEDED)
    resumed = chunks[len(waiting):]
    assert resumed[0] == ToolResultChunk(id=call.id, output={"city": "Paris"})
    assert [c.type for c in resumed[-3:]] == ["step_end", "usage", "end"]
    assert "Paris" in text_of(resumed)
    assert waits.service.get(CALLER, run_id).status is RunStatus.SUCCEEDED


def test_an_approved_tool_runs_with_the_input_frozen_when_approval_was_asked(waits):
    run_id = waits.start(task="What is 17*23?", approvalRequired=["calculator"])
    assert waits.deliver(run_id) is Outcome.SUSPENDED
    [action] = waits.requested(run_id).actions
    assert action.kind == "approval" and action.name == "calculator"
    assert not any(isinstance(c, ToolResultChunk) for c in waits.chunks(run_id))  # nothing ran before the approval

    waits.actions.submit_decisions(CALLER, run_id, [ApprovalDecision(approval_id=action.approval_id, approved=True)])
    assert waits.deliver(run_id) is Outcome.EXECUTED
    chunks = assert_whole_log(waits.store, run_id, RunStatus.SUCCEEDED)
    [result] = [c for c in chunks if isinstance(c, ToolResultChunk)]
    assert result.id == action.tool_call_id and not result.is_error
    assert result.output == {"expression": action.input["expression"], "result": 391}
    assert "391" in text_of(chunks)


def test_a_denied_tool_never_runs_and_the_model_is_told_so(waits):
    run_id = waits.start(task="What is 17*23?", approvalRequired=["calculator"])
    waits.deliver(run_id)
    [action] = waits.requested(run_id).actions
    waits.actions.submit_decisions(CALLER, run_id, [
        ApprovalDecision(approval_id=action.approval_id, approved=False, reason="not on my budget")])
    waits.deliver(run_id)
    chunks = assert_whole_log(waits.store, run_id, RunStatus.SUCCEEDED)
    [result] = [c for c in chunks if isinstance(c, ToolResultChunk)]
    assert result.denied and result.is_error
    assert result.output == {"denied": True, "reason": "not on my budget"}
    assert "391" not in text_of(chunks)
    assert "did not run" in text_of(chunks) and "not on my budget" in text_of(chunks)


def test_a_run_waiting_for_two_answers_resumes_only_once_both_are_in(waits):
    run_id = waits.start(task="What is 6*7? Use get_location.", clientMcpTools=[GET_LOCATION],
                         approvalRequired=["calculator"])
    assert waits.deliver(run_id) is Outcome.SUSPENDED
    actions = waits.requested(run_id).actions
    assert sorted(a.kind for a in actions) == ["approval", "client_tool"]
    tool = next(a for a in actions if a.kind == "client_tool")
    approval = next(a for a in actions if a.kind == "approval")

    partial = waits.actions.submit_tool_outputs(CALLER, run_id, [ToolOutput(tool_call_id=tool.tool_call_id, output="Oslo")])
    assert not partial.resumed and partial.run.status is RunStatus.REQUIRES_ACTION
    assert len(waits.queue.messages) == 1  # only the start's
    first_usage = waits.store.get_run(CALLER.org_id, run_id).usage

    done = waits.actions.submit_decisions(CALLER, run_id, [ApprovalDecision(approval_id=approval.approval_id, approved=True)])
    assert done.resumed and len(waits.queue.messages) == 2
    assert waits.deliver(run_id) is Outcome.EXECUTED
    chunks = assert_whole_log(waits.store, run_id, RunStatus.SUCCEEDED)
    results = {c.id: c.output for c in chunks if isinstance(c, ToolResultChunk)}
    assert results[tool.tool_call_id] == "Oslo" and results[approval.tool_call_id]["result"] == 42
    final = waits.store.get_run(CALLER.org_id, run_id).usage
    assert final.input_tokens > first_usage.input_tokens > 0  # both invocations counted


def test_usage_sums_the_steps_of_every_worker_invocation(waits):
    run_id = waits.start(task="Where am I? Use get_location.", clientMcpTools=[GET_LOCATION])
    waits.deliver(run_id)
    [first_step] = [c for c in waits.chunks(run_id) if isinstance(c, StepEndChunk)]
    waits.actions.submit_tool_outputs(CALLER, run_id, [
        ToolOutput(tool_call_id=waits.requested(run_id).actions[0].tool_call_id, output="Rome")])
    waits.deliver(run_id)
    chunks = waits.chunks(run_id)
    steps = [c for c in chunks if isinstance(c, StepEndChunk)]
    assert len(steps) == 2 and steps[0] == first_step
    usage = chunks[-2]
    assert isinstance(usage, UsageChunk)
    assert usage.input_tokens == steps[0].input_tokens + steps[1].input_tokens
    assert usage.output_tokens == steps[0].output_tokens + steps[1].output_tokens
    stored = waits.store.get_run(CALLER.org_id, run_id).usage
    assert (stored.input_tokens, stored.output_tokens) == (usage.input_tokens, usage.output_tokens)


def test_cancel_while_waiting_ends_the_run_cancelled_with_usage_then_end(waits):
    run_id = waits.start(task="Where am I? Use get_location.", clientMcpTools=[GET_LOCATION])
    waits.deliver(run_id)
    waiting = waits.store.get_run(CALLER.org_id, run_id)
    assert waits.service.cancel(CALLER, run_id).status is RunStatus.CANCELLED
    chunks = waits.chunks(run_id)
    assert [c.type for c in chunks[waiting.last_seq:]] == ["usage", "end"]
    assert chunks[waiting.last_seq] == UsageChunk(model=waiting.usage.model, input_tokens=waiting.usage.input_tokens,
                                                  output_tokens=waiting.usage.output_tokens)
    assert_one_terminal_sequence(chunks, RunStatus.CANCELLED)
    with pytest.raises(NotWaitingError):
        waits.actions.submit_tool_outputs(CALLER, run_id, [ToolOutput(tool_call_id=chunks[0].id, output="Paris")])
    assert len(waits.queue.messages) == 1


def expired_by_the_wait(waits, run_id, waiting_last_seq):
    run = waits.store.get_run(CALLER.org_id, run_id)
    assert run.status is RunStatus.EXPIRED and run.error.code == "action_timed_out"
    chunks = waits.chunks(run_id)
    assert [c.type for c in chunks[waiting_last_seq:]] == ["error", "usage", "end"]
    assert chunks[waiting_last_seq].code == "action_timed_out"
    assert_one_terminal_sequence(chunks, RunStatus.EXPIRED)
    with pytest.raises(NotWaitingError):
        waits.actions.submit_tool_outputs(CALLER, run_id, [ToolOutput(tool_call_id=chunks[0].id, output="late")])
    assert [m.run_id for m in waits.queue.messages].count(run_id) == 1  # the start's message only


def test_a_wait_past_its_deadline_is_ended_expired_by_the_next_read(waits):
    run_id = waits.start(task="Where am I? Use get_location.", clientMcpTools=[GET_LOCATION])
    waits.deliver(run_id)
    waiting = waits.store.get_run(CALLER.org_id, run_id)
    waits.clock.advance(ACTION_TIMEOUT - 5)
    assert waits.service.get(CALLER, run_id).status is RunStatus.REQUIRES_ACTION  # not yet
    waits.clock.advance(10)
    assert waits.service.get(CALLER, run_id).status is RunStatus.EXPIRED
    expired_by_the_wait(waits, run_id, waiting.last_seq)


def test_the_sweep_ends_every_wait_past_its_deadline_and_only_those(waits):
    late = waits.start(task="Where am I? Use get_location.", clientMcpTools=[GET_LOCATION])
    waits.deliver(late)
    waiting = waits.store.get_run(CALLER.org_id, late)
    waits.clock.advance(ACTION_TIMEOUT / 2)
    fresh = waits.start(task="What is 2*21?", approvalRequired=["calculator"])
    waits.deliver(fresh)
    waits.clock.advance(ACTION_TIMEOUT / 2 + 1)
    sweeper = WaitSweeper(waits.store, waits.clock, batch=1)
    assert sweeper.sweep() == 1
    assert sweeper.sweep() == 0
    assert waits.store.get_run(CALLER.org_id, fresh).status is RunStatus.REQUIRES_ACTION
    expired_by_the_wait(waits, late, waiting.last_seq)


def test_a_sync_caller_stops_waiting_when_the_run_waits_for_its_client(waits):
    run_id = waits.start(task="Where am I? Use get_location.", clientMcpTools=[GET_LOCATION])
    waits.deliver(run_id)
    service = RunService(waits.store, waits.queue, default_catalog(), RunServicePolicy(), waits.clock,
                         sleep=lambda seconds: pytest.fail("waited on a run that waits for its client"))
    assert service.wait_for_end(CALLER, run_id, timeout=30).status is RunStatus.REQUIRES_ACTION


@pytest.mark.parametrize("body", [
    pytest.param({"approvalRequired": ["web_search"]}, id="approval-for-a-tool-the-agent-lacks"),
    pytest.param({"approvalRequired": ["calculator"], "availableTools": ["current_time"]},
                 id="approval-for-a-tool-the-run-excludes"),
    pytest.param({"approvalRequired": ["get_location"], "clientMcpTools": [GET_LOCATION]},
                 id="approval-for-a-client-tool"),
    pytest.param({"clientMcpTools": [{"name": "calculator"}]}, id="client-tool-shadowing-a-server-tool"),
])
def test_start_refuses_tools_a_run_cannot_have(waits, body):
    with pytest.raises(InvalidRequestError):
        waits.start(task="What is 6*7?", **body)
    assert waits.store._runs == {} and waits.queue.messages == []


class CancelOnToolCall:
    """A model that, as it asks for a tool, has the user press cancel: the cancel lands after the
    writer's last check and before the run could suspend."""

    name = "cancelling"

    def __init__(self, inner, store) -> None:
        self._inner, self._store = inner, store

    def stream(self, request, cancellation):
        for event in self._inner.stream(request, cancellation):
            if isinstance(event, ToolCallRequested):
                run_id = next(key[1] for key, run in self._store._runs.items() if run.status is RunStatus.RUNNING)
                self._store.request_cancel(CALLER.org_id, run_id)
            yield event


def test_a_cancel_that_lands_just_before_a_wait_ends_the_run_cancelled_not_waiting(waits):
    worker = RunWorker(
        waits.store, CancelOnToolCall(ScriptedProvider(waits.clock, token_delay_seconds=0.001), waits.store),
        default_catalog(), default_tools(waits.clock),
        WorkerPolicy(max_run_seconds=30.0, cancel_check_seconds=60.0, coalescing=CoalescingPolicy(window_seconds=0.05)),
        waits.clock,
    )
    run_id = waits.start(task="What is 4 * 4?", approvalRequired=["calculator"])
    assert worker.process(waits.queue.messages[-1]) is Outcome.EXECUTED
    run = waits.service.get(CALLER, run_id)
    assert run.status is RunStatus.CANCELLED and run.actions is None
    chunks = waits.chunks(run_id)
    assert_one_terminal_sequence(chunks, RunStatus.CANCELLED)
    assert [c.type for c in chunks] == ["tool_use", "step_end", "usage", "end"]


def test_a_run_cancelled_between_its_answers_and_its_claim_runs_nothing(waits):
    run_id = waits.start(task="What is 4 * 4?", approvalRequired=["calculator"])
    assert waits.deliver(run_id) is Outcome.SUSPENDED
    (action,) = waits.requested(run_id).actions
    waits.actions.submit_decisions(CALLER, run_id, [ApprovalDecision(approval_id=action.approval_id, approved=True)])
    waits.store.request_cancel(CALLER.org_id, run_id)  # queued: flagged before any worker claims it
    assert waits.deliver(run_id) is Outcome.EXECUTED
    chunks = waits.chunks(run_id)
    assert not any(isinstance(c, ToolResultChunk) for c in chunks), "the approved tool never ran"
    assert waits.service.get(CALLER, run_id).status is RunStatus.CANCELLED
    assert [c.type for c in chunks[-2:]] == ["usage", "end"]


def test_a_resumed_run_sees_the_history_it_began_with(waits):
    from runwire.adapters.memory import InMemoryConversationStore

    conversations = InMemoryConversationStore(waits.clock)
    conversations.append_turn(CALLER.org_id, "c1", run_id="run_before", at=waits.clock() - 10,
                              user="My name is Ada.", assistant="Nice to meet you, Ada.")
    seen = []

    class Recording(ScriptedProvider):
        def stream(self, request, cancellation):
            seen.append([m.text for m in request.messages])
            return super().stream(request, cancellation)

    worker = RunWorker(waits.store, Recording(waits.clock, token_delay_seconds=0.001), default_catalog(),
                       default_tools(waits.clock), WorkerPolicy(cancel_check_seconds=0.05), waits.clock,
                       conversations=conversations)
    run_id = waits.start(task="Where am I? Use get_location.", clientMcpTools=[GET_LOCATION], conversationId="c1")
    assert worker.process(waits.queue.messages[-1]) is Outcome.SUSPENDED
    # Meanwhile another run of the conversation finishes.
    conversations.append_turn(CALLER.org_id, "c1", run_id="run_meanwhile", at=waits.clock() + 1,
                              user="Call me Bob.", assistant="Sure, Bob.")
    call = waits.chunks(run_id)[0]
    waits.actions.submit_tool_outputs(CALLER, run_id, [ToolOutput(tool_call_id=call.id, output="Paris")])
    assert worker.process(waits.queue.messages[-1]) is Outcome.EXECUTED
    assert seen[1][:2] == seen[0][:2] == ["My name is Ada.", "Nice to meet you, Ada."]
    assert not any("Bob" in text for texts in seen for text in texts)


def test_a_run_that_waited_is_gone_its_retention_after_it_ended(waits):
    run_id = waits.start(task="What is 4 * 4?", approvalRequired=["calculator"])
    assert waits.deliver(run_id) is Outcome.SUSPENDED
    waits.clock.advance(ACTION_TIMEOUT + 1)
    expired = waits.service.get(CALLER, run_id)  # the read ends the overdue wait
    assert expired.status is RunStatus.EXPIRED
    waits.clock.advance(300 - 2)
    assert waits.service.get(CALLER, run_id).status is RunStatus.EXPIRED
    waits.clock.advance(5)
    with pytest.raises(RunNotFoundError):
        waits.service.get(CALLER, run_id)


# --- take-overs around tools: what the dead worker left open ------------------------------------
class SendEmail:
    """A tool with a side effect: not safe to run twice."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def tool(self):
        from runwire.core.ports import ToolSpec
        from runwire.core.tools import ServerTool

        return ServerTool(ToolSpec("send_email", "Send an email.", {"type": "object"}),
                          lambda arguments, context: self.sent.append(arguments) or {"sent": True})


def tools_system(approval_required=()):
    from runwire.core.agents import AgentCatalog, AgentDefinition
    from runwire.core.tools import ToolRegistry, calculator_tool

    email = SendEmail()
    agent = AgentDefinition(role="mailer", agent_id="ag_mailer", description="d", system_prompt="s",
                            tools=["send_email", "calculator"], approval_required=list(approval_required))
    catalog = AgentCatalog([agent])
    store, queue = InMemoryRunStore(time.time), InMemoryRunQueue()
    service = RunService(store, queue, catalog, RunServicePolicy(retention_seconds=300), time.time)
    worker = RunWorker(store, ScriptedProvider(time.time, token_delay_seconds=0.001), catalog,
                       ToolRegistry([email.tool(), calculator_tool()]),
                       WorkerPolicy(max_run_seconds=30, cancel_check_seconds=0.05, lease=FAST_LEASE), time.time)
    return store, queue, service, worker, email


def died_after(store, run, *chunks):
    """A worker claimed `run`, wrote `chunks` and died: its lease has lapsed."""
    store.claim(run.org_id, run.run_id, lease=Lease("dead", time.time() - 1), now=time.time() - 5,
                expires_at=int(time.time() + 600))
    for seq, chunk in enumerate(chunks, start=1):
        store.append_chunk(run.org_id, run.run_id, seq, chunk, expires_at=int(time.time() + 600), owner="dead")


def test_a_tool_call_cut_off_before_its_result_runs_again_only_if_it_is_idempotent():
    store, queue, service, worker, email = tools_system()
    run = service.start(CALLER, RunRequest(task="mail and add", agentRole="mailer"))
    died_after(store, run, ToolUseChunk(id="t1", name="send_email", input={"to": "a@b.c"}),
               ToolUseChunk(id="t2", name="calculator", input={"expression": "2+2"}))
    assert worker.process(queue.messages[0]) is Outcome.RECOVERED
    results = {c.id: c for c in chunks_of(store, run) if isinstance(c, ToolResultChunk)}
    assert email.sent == [] and results["t1"].is_error and "interrupted" in results["t1"].output["error"]
    assert not results["t2"].is_error and results["t2"].output["result"] == 4
    assert_one_terminal_sequence(chunks_of(store, run), RunStatus.SUCCEEDED)


@pytest.mark.parametrize("gate", ["approval", "client tool"])
def test_a_take_over_asks_the_client_for_what_the_dead_worker_never_asked(gate):
    store, queue, service, worker, email = tools_system(approval_required=["send_email"])
    if gate == "approval":
        request = RunRequest(task="mail", agentRole="mailer")
        call = ToolUseChunk(id="t1", name="send_email", input={"to": "a@b.c"})
    else:
        request = RunRequest.model_validate({"task": "where?", "agentRole": "mailer", "clientMcpTools": [
            {"name": "get_location", "description": "d", "inputSchema": {"type": "object"}}]})
        call = ToolUseChunk(id="t1", name="get_location", input={}, executor="client")
    run = service.start(CALLER, request)
    died_after(store, run, call)
    assert worker.process(queue.messages[0]) is Outcome.SUSPENDED
    chunks = chunks_of(store, run)
    waiting = [c for c in chunks if isinstance(c, RequiresActionChunk)]
    assert len(waiting) == 1 and [a.tool_call_id for a in waiting[0].actions] == ["t1"]
    assert email.sent == [] and not [c for c in chunks if isinstance(c, ToolResultChunk)]
    assert service.get(CALLER, run.run_id).status is RunStatus.REQUIRES_ACTION


def test_an_approved_tool_is_not_run_again_by_a_take_over_unless_idempotent():
    store, queue, service, worker, email = tools_system(approval_required=["send_email"])
    actions = ActionService(store, queue, time.time, service.get)
    run = service.start(CALLER, RunRequest(task="mail", agentRole="mailer"))
    died_after(store, run, ToolUseChunk(id="t1", name="send_email", input={"to": "a@b.c"}))
    assert worker.process(queue.messages[0]) is Outcome.SUSPENDED  # the take-over asked for approval
    approval = service.get(CALLER, run.run_id).actions[0].action
    actions.submit_decisions(CALLER, run.run_id, [ApprovalDecision(approval_id=approval.approval_id, approved=True)])
    # The worker that claimed the approved run died before the tool's result was logged: it may have sent it.
    claimed = store.claim(CALLER.org_id, run.run_id, lease=Lease("resumed", time.time() - 1), now=time.time() - 2,
                          expires_at=int(time.time() + 600))
    assert claimed.takeovers == 0
    assert worker.process(queue.messages[-1]) is Outcome.RECOVERED
    results = [c for c in chunks_of(store, run) if isinstance(c, ToolResultChunk)]
    assert email.sent == [] and len(results) == 1 and "interrupted" in results[0].output["error"]
    assert_one_terminal_sequence(chunks_of(store, run), RunStatus.SUCCEEDED)


def test_a_worker_whose_writes_are_slow_keeps_its_lease_and_its_run():
    class SlowWrites(InMemoryRunStore):
        """One chunk write takes three leases' time (storage retrying a throttle)."""

        stalled = threading.Event()

        def append_chunk(self, org_id, run_id, seq, chunk, *, expires_at, owner=None):
            if seq == 2 and not self.stalled.is_set():
                self.stalled.set()
                time.sleep(3 * FAST_LEASE.lease_seconds)
            return super().append_chunk(org_id, run_id, seq, chunk, expires_at=expires_at, owner=owner)

    store = SlowWrites(time.time)
    service, run, first, slow, message = worker_in_background(store, "[[scripted tokens=30 delay_ms=5]]")
    assert store.stalled.wait(10)
    time.sleep(2 * FAST_LEASE.lease_seconds)  # past the lease, had nothing renewed it
    assert take_over_worker(store).process(message) is Outcome.DUPLICATE
    slow.join(20)
    assert first == [Outcome.EXECUTED]
    assert service.get(CALLER, run.run_id).attempts == 1
    assert_one_terminal_sequence(chunks_of(store, run), RunStatus.SUCCEEDED)
