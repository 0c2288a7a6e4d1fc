"""Double-texting: a run started on a conversation whose run is still active follows its
`multitaskStrategy` (reject, enqueue, interrupt), against in-memory fakes."""

import threading
import time

import pytest

from runwire.adapters.memory import InMemoryConversationStore, InMemoryRunQueue, InMemoryRunStore
from runwire.adapters.scripted_provider import ScriptedProvider
from runwire.core.agents import default_catalog
from runwire.core.chunks import CoalescingPolicy
from runwire.core.models import Caller, RunMessage, RunRequest, RunStatus, TextChunk
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.core.tools import default_tools
from runwire.core.worker import Outcome, RunWorker, WorkerPolicy
from runwire.errors import ConversationBusyError, QueueUnavailableError

CALLER = Caller(user_id="u1", org_id="acme")
CONVERSATION = "c1"


class System:
    def __init__(self) -> None:
        self.store = InMemoryRunStore(time.time)
        self.queue = InMemoryRunQueue()
        self.conversations = InMemoryConversationStore(time.time)
        self.service = RunService(self.store, self.queue, default_catalog(),
                                  RunServicePolicy(retention_seconds=300, queued_run_horizon_seconds=900),
                                  time.time, conversations=self.conversations)
        self.worker = RunWorker(
            self.store, ScriptedProvider(time.time, token_delay_seconds=0.002), default_catalog(),
            default_tools(time.time),
            WorkerPolicy(max_run_seconds=30, cancel_check_seconds=0.02, coalescing=CoalescingPolicy(window_seconds=0.02)),
            time.time, conversations=self.conversations, queue=self.queue,
        )

    def start(self, task: str, strategy: str | None = None):
        return self.service.start(CALLER, RunRequest(task=task, conversation_id=CONVERSATION, multitask_strategy=strategy))

    def message_of(self, run) -> RunMessage:
        return next(m for m in self.queue.messages if m.run_id == run.run_id)

    def status(self, run) -> RunStatus:
        return self.service.get(CALLER, run.run_id).status

    def text(self, run) -> str:
        chunks = self.store.read_chunks(CALLER.org_id, run.run_id, after=0, limit=10_000)
        return "".join(c.chunk.text for c in chunks if isinstance(c.chunk, TextChunk))

    def run_in_background(self, run) -> threading.Thread:
        thread = threading.Thread(target=self.worker.process, args=(self.message_of(run),))
        thread.start()
        deadline = time.monotonic() + 5
        while self.status(run) is not RunStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        return thread


@pytest.fixture
def system():
    return System()


def test_a_second_run_on_a_busy_conversation_is_rejected_by_default_and_nothing_is_stored(system):
    first = system.start("[[scripted tokens=5]]")
    with pytest.raises(ConversationBusyError) as refused:
        system.start("again")
    assert refused.value.details == {"activeRunId": first.run_id}
    assert len(system.queue.messages) == 1
    assert system.conversations.active_run(CALLER.org_id, CONVERSATION) == first.run_id


def test_once_the_active_run_ended_the_next_one_starts_without_waiting(system):
    first = system.start("[[scripted tokens=3]]")
    system.worker.process(system.message_of(first))
    second = system.start("[[scripted tokens=3]]")
    assert second.after_run_id is None
    assert system.worker.process(system.message_of(second)) is Outcome.EXECUTED


def test_an_enqueued_run_waits_for_the_active_one_and_then_sees_its_turn(system):
    first = system.start("[[scripted tokens=200 delay_ms=5]]")
    thread = system.run_in_background(first)
    second = system.start("[[scripted tokens=3]]", "enqueue")
    assert second.after_run_id == first.run_id
    message = system.message_of(second)
    assert system.worker.process(message) is Outcome.DEFERRED
    assert system.status(second) is RunStatus.QUEUED
    assert system.queue.messages[-1] == message and system.queue.delays[-1] > 0  # comes back later
    thread.join(10)
    assert system.status(first) is RunStatus.SUCCEEDED
    assert system.worker.process(message) is Outcome.EXECUTED
    assert system.status(second) is RunStatus.SUCCEEDED
    remembered = system.conversations.recent_messages(CALLER.org_id, CONVERSATION, limit=20)
    assert [m.run_id for m in remembered] == [first.run_id] * 2 + [second.run_id] * 2


def test_interrupt_cancels_the_active_run_keeps_its_partial_answer_and_then_runs(system):
    first = system.start("[[scripted tokens=2000 delay_ms=5]]")
    thread = system.run_in_background(first)
    time.sleep(0.2)
    second = system.start("[[scripted tokens=3]]", "interrupt")
    thread.join(10)
    assert system.status(first) is RunStatus.CANCELLED
    partial = system.text(first)
    assert 0 < len(partial) < len("".join(f" {n}" for n in range(1, 2001)))
    assert system.worker.process(system.message_of(second)) is Outcome.EXECUTED
    remembered = system.conversations.recent_messages(CALLER.org_id, CONVERSATION, limit=20)
    assert remembered[1].run_id == first.run_id and remembered[1].content == partial  # kept, as far as it got


def test_interrupt_also_cancels_the_runs_the_active_one_waits_behind(system):
    first = system.start("[[scripted tokens=2000 delay_ms=5]]")
    thread = system.run_in_background(first)
    queued = system.start("[[scripted tokens=3]]", "enqueue")
    third = system.start("[[scripted tokens=3]]", "interrupt")
    thread.join(10)
    assert system.status(first) is RunStatus.CANCELLED
    assert system.status(queued) is RunStatus.CANCELLED
    assert third.after_run_id == queued.run_id
    assert system.worker.process(system.message_of(third)) is Outcome.EXECUTED


def test_a_run_behind_a_cancelled_queued_run_still_waits_for_the_one_that_runs(system):
    first = system.start("[[scripted tokens=300 delay_ms=5]]")
    thread = system.run_in_background(first)
    queued = system.start("[[scripted tokens=3]]", "enqueue")
    third = system.start("[[scripted tokens=3]]", "enqueue")
    system.service.cancel(CALLER, queued.run_id)
    assert system.worker.process(system.message_of(third)) is Outcome.DEFERRED  # `first` still runs
    thread.join(10)
    assert system.worker.process(system.message_of(third)) is Outcome.EXECUTED


def test_a_run_being_cancelled_is_waited_for_even_with_reject(system):
    first = system.start("[[scripted tokens=2000 delay_ms=5]]")
    thread = system.run_in_background(first)
    system.service.cancel(CALLER, first.run_id)
    second = system.start("[[scripted tokens=3]]")  # a chat app's "stop", then the next message
    assert second.after_run_id == first.run_id
    thread.join(10)
    assert system.worker.process(system.message_of(second)) is Outcome.EXECUTED


def test_a_run_waiting_for_its_client_does_not_hold_the_conversation(system):
    request = RunRequest(task="Where am I? Use get_location.", conversation_id=CONVERSATION,
                         client_mcp_tools=[{"name": "get_location"}])
    waiting = system.service.start(CALLER, request)
    system.worker.process(system.message_of(waiting))
    assert system.status(waiting) is RunStatus.REQUIRES_ACTION
    later = system.start("[[scripted tokens=3]]")
    assert later.after_run_id is None
    assert system.conversations.active_run(CALLER.org_id, CONVERSATION) == later.run_id


def test_multitask_strategy_needs_a_conversation():
    with pytest.raises(ValueError, match="conversationId"):
        RunRequest(task="hi", multitask_strategy="enqueue")
    with pytest.raises(ValueError):
        RunRequest(task="hi", conversation_id="c1", multitask_strategy="rollback")


def test_concurrent_starts_on_a_free_conversation_start_exactly_one(system):
    results: list[object] = []
    barrier = threading.Barrier(8)

    def start():
        barrier.wait()
        try:
            results.append(system.start("[[scripted tokens=3]]"))
        except ConversationBusyError as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(not isinstance(r, ConversationBusyError) for r in results) == 1
    assert len(system.queue.messages) == 1


class StartingInsideCreate(InMemoryRunStore):
    """A run store that lets a second request start on the conversation while the first is being
    stored: the window between storing a run and pointing the conversation at it."""

    def __init__(self, clock, during_create) -> None:
        super().__init__(clock)
        self.during_create = during_create

    def create_run(self, run) -> None:
        super().create_run(run)
        if self.during_create is not None:
            action, self.during_create = self.during_create, None
            action()


def test_two_starts_in_one_window_cannot_both_take_a_free_conversation(system):
    outcomes: list[object] = []

    def second_start() -> None:
        try:
            outcomes.append(system.start("[[scripted tokens=3]]"))
        except ConversationBusyError as exc:
            outcomes.append(exc)

    store = StartingInsideCreate(time.time, second_start)
    system.store = store
    system.service = RunService(store, system.queue, default_catalog(), RunServicePolicy(queued_run_horizon_seconds=900),
                                time.time, conversations=system.conversations)
    try:
        outcomes.append(system.start("[[scripted tokens=3]]"))
    except ConversationBusyError as exc:
        outcomes.append(exc)
    started = [o for o in outcomes if not isinstance(o, ConversationBusyError)]
    assert len(outcomes) == 2 and len(started) == 1  # one wins, the other is told the conversation is busy
    assert [m.run_id for m in system.queue.messages] == [started[0].run_id]
    assert system.conversations.active_run(CALLER.org_id, CONVERSATION) == started[0].run_id
    assert len(store._runs) == 1  # the loser's run is not left stored (nothing half-written)


def test_cancelling_a_queued_follow_up_leaves_the_conversation_to_the_run_still_running(system):
    first = system.start("[[scripted tokens=300 delay_ms=5]]")
    thread = system.run_in_background(first)
    queued = system.start("[[scripted tokens=3]]", "enqueue")
    system.service.cancel(CALLER, queued.run_id)
    with pytest.raises(ConversationBusyError) as refused:
        system.start("[[scripted tokens=3]]")
    assert refused.value.details == {"activeRunId": first.run_id}
    later = system.start("[[scripted tokens=3]]", "enqueue")
    assert later.after_run_id == first.run_id
    thread.join(10)


def test_an_interrupt_whose_run_cannot_be_queued_cancels_nothing_and_gives_the_conversation_back(system):
    first = system.start("[[scripted tokens=300 delay_ms=5]]")
    thread = system.run_in_background(first)
    system.queue.fail_next = True
    with pytest.raises(QueueUnavailableError):
        system.start("[[scripted tokens=3]]", "interrupt")
    assert system.status(first) is RunStatus.RUNNING
    assert system.conversations.active_run(CALLER.org_id, CONVERSATION) == first.run_id
    thread.join(10)
    assert system.status(first) is RunStatus.SUCCEEDED
