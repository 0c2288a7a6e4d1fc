"""Answering a waiting run: only what the server asked for is accepted, answers are kept until the
set is complete, and the answer that completes it hands the run back to the workers exactly once."""

from __future__ import annotations

import uuid

import pytest

from runwire.adapters.memory import InMemoryRunQueue, InMemoryRunStore
from runwire.core.actions import ActionService, apply_decisions, apply_tool_outputs
from runwire.core.agents import default_catalog
from runwire.core.ending import approval_id, pending_action
from runwire.core.models import (
    ApprovalAction,
    ApprovalDecision,
    Caller,
    RequiresActionChunk,
    RunMessage,
    RunRecord,
    RunRequest,
    RunStatus,
    ToolOutput,
    ToolUseChunk,
)
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.core.transcript import ToolCallBlock
from runwire.errors import NotWaitingError, QueueUnavailableError, RunNotFoundError

CALLER = Caller(user_id="u1", org_id="acme")
LOCATION = ToolCallBlock("toolu_1", "get_location", {"precision": "city"}, executor="client")
CALCULATION = ToolCallBlock("toolu_2", "calculator", {"expression": "17 * 23"}, needs_approval=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def waiting_record(*calls: ToolCallBlock, run_id: str = "run_waiting") -> RunRecord:
    return RunRecord(
        run_id=run_id, org_id=CALLER.org_id, user_id=CALLER.user_id, agent_id="ag_chat",
        status=RunStatus.REQUIRES_ACTION, request=RunRequest(task="t"), created_at=0, expires_at=10**10,
        actions=[pending_action(run_id, call) for call in calls],
    )


def the_approval_id(run: RunRecord) -> str:
    action = next(a.action for a in run.actions if isinstance(a.action, ApprovalAction))
    return action.approval_id


# --- apply_tool_outputs / apply_decisions: checked against what the run asked for ------------------
def test_an_output_for_a_tool_call_the_run_never_made_is_refused():
    run = waiting_record(LOCATION)
    with pytest.raises(NotWaitingError):
        apply_tool_outputs(run, [ToolOutput(tool_call_id="toolu_unknown", output="Paris")])


def test_a_tool_output_cannot_answer_a_call_that_waits_for_approval():
    run = waiting_record(CALCULATION)
    with pytest.raises(NotWaitingError):
        apply_tool_outputs(run, [ToolOutput(tool_call_id=CALCULATION.id, output={"result": 0})])


def test_an_approval_id_issued_for_another_run_is_refused():
    run = waiting_record(CALCULATION)
    foreign = approval_id("run_other", CALCULATION.id, CALCULATION.input)
    assert foreign != the_approval_id(run)
    with pytest.raises(NotWaitingError):
        apply_decisions(run, [ApprovalDecision(approval_id=foreign, approved=True)])


def test_an_approval_id_for_another_input_is_refused():
    run = waiting_record(CALCULATION)
    other_input = approval_id(run.run_id, CALCULATION.id, {"expression": "1 + 1"})
    with pytest.raises(NotWaitingError):
        apply_decisions(run, [ApprovalDecision(approval_id=other_input, approved=True)])


def test_an_approval_whose_stored_input_was_altered_is_no_longer_answerable():
    run = waiting_record(CALCULATION)
    [pending] = run.actions
    altered = pending.action.model_copy(update={"input": {"expression": "__import__('os')"}})
    run = run.model_copy(update={"actions": [pending.model_copy(update={"action": altered})]})
    with pytest.raises(NotWaitingError):
        apply_decisions(run, [ApprovalDecision(approval_id=altered.approval_id, approved=True)])


def test_a_second_different_output_is_refused():
    run = waiting_record(LOCATION)
    answered = run.model_copy(update={"actions": apply_tool_outputs(run, [ToolOutput(tool_call_id="toolu_1", output="Paris")])})
    with pytest.raises(NotWaitingError):
        apply_tool_outputs(answered, [ToolOutput(tool_call_id="toolu_1", output="Lyon")])
    with pytest.raises(NotWaitingError):
        apply_tool_outputs(answered, [ToolOutput(tool_call_id="toolu_1", output="Paris", is_error=True)])


def test_a_second_different_decision_is_refused():
    run = waiting_record(CALCULATION)
    approve = ApprovalDecision(approval_id=the_approval_id(run), approved=True)
    answered = run.model_copy(update={"actions": apply_decisions(run, [approve])})
    with pytest.raises(NotWaitingError):
        apply_decisions(answered, [ApprovalDecision(approval_id=the_approval_id(run), approved=False, reason="no")])


def test_the_same_answer_twice_leaves_the_actions_unchanged():
    run = waiting_record(LOCATION, CALCULATION)
    output = ToolOutput(tool_call_id="toolu_1", output={"city": "Paris"})
    decision = ApprovalDecision(approval_id=the_approval_id(run), approved=False, reason="not now")
    once = run.model_copy(update={"actions": apply_decisions(run, [decision])})
    once = once.model_copy(update={"actions": apply_tool_outputs(once, [output])})
    assert apply_tool_outputs(once, [output]) == once.actions
    assert apply_decisions(once, [decision]) == once.actions
    assert apply_tool_outputs(once, [output, output]) == once.actions


def test_partial_answers_are_kept_and_the_rest_stays_open():
    run = waiting_record(LOCATION, CALCULATION)
    output = ToolOutput(tool_call_id="toolu_1", output={"city": "Paris"})
    partial = apply_tool_outputs(run, [output])
    assert [a.answered for a in partial] == [True, False]
    assert partial[0].output == output and partial[1] == run.actions[1]
    decision = ApprovalDecision(approval_id=the_approval_id(run), approved=True)
    complete = apply_decisions(run.model_copy(update={"actions": partial}), [decision])
    assert [a.answered for a in complete] == [True, True]
    assert complete[0].output == output and complete[1].decision == decision


def test_a_refused_batch_records_none_of_its_answers():
    run = waiting_record(LOCATION)
    with pytest.raises(NotWaitingError):
        apply_tool_outputs(run, [ToolOutput(tool_call_id="toolu_1", output="Paris"),
                                 ToolOutput(tool_call_id="toolu_nope", output="x")])
    assert not run.actions[0].answered


# --- ActionService over the in-memory store and queue ------------------------------------------
@pytest.fixture
def answering():
    clock = FakeClock()
    store = InMemoryRunStore(clock)
    queue = InMemoryRunQueue()
    runs = RunService(store, queue, default_catalog(), RunServicePolicy(), clock)
    actions = ActionService(store, queue, clock, runs.get)
    return store, queue, actions, clock


def suspend_new_run(store: InMemoryRunStore, clock: FakeClock, *calls: ToolCallBlock, org: str = "acme") -> RunRecord:
    """A run that stopped at these calls, as the worker leaves it: its tool_use chunks, then requires_action."""
    run_id = "run_" + uuid.uuid4().hex
    store.create_run(RunRecord(
        run_id=run_id, org_id=org, user_id="u1", agent_id="ag_chat", status=RunStatus.QUEUED,
        request=RunRequest(task="t"), created_at=clock(), expires_at=int(clock()) + 300,
    ))
    store.transition(org, run_id, RunStatus.RUNNING)
    pending = [pending_action(run_id, call) for call in calls]
    chunks = [ToolUseChunk(id=c.id, name=c.name, input=c.input, executor=c.executor) for c in calls]
    chunks.append(RequiresActionChunk(actions=[p.action for p in pending], expires_at="2027-01-15T08:00:00.000Z"))
    return store.suspend(org, run_id, first_seq=1, chunks=chunks, actions=pending,
                         action_expires_at=clock() + 3600, usage=None, expires_at=int(clock()) + 5000)


def test_the_answer_that_completes_the_set_requeues_the_run_once(answering):
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION, CALCULATION)
    first = actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id="toolu_1", output="Paris")])
    assert not first.resumed and first.run.status is RunStatus.REQUIRES_ACTION
    assert queue.messages == []
    last = actions.submit_decisions(CALLER, run.run_id, [ApprovalDecision(approval_id=the_approval_id(run), approved=True)])
    assert last.resumed and last.run.status is RunStatus.QUEUED
    assert queue.messages == [RunMessage(run_id=run.run_id, org_id=CALLER.org_id)]
    stored = store.get_run(CALLER.org_id, run.run_id)
    assert stored.status is RunStatus.QUEUED and all(a.answered for a in stored.actions)


def test_partial_answers_are_stored_but_do_not_requeue(answering):
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION, CALCULATION)
    actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id="toolu_1", output="Paris")])
    actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id="toolu_1", output="Paris")])
    stored = store.get_run(CALLER.org_id, run.run_id)
    assert stored.status is RunStatus.REQUIRES_ACTION and queue.messages == []
    assert [a.answered for a in stored.actions] == [True, False]
    assert stored.actions[0].output.output == "Paris"


def test_the_same_answer_while_the_run_is_still_queued_sends_its_message_again(answering):
    # The answering process may have died between re-queuing the run and sending its message: a
    # retried answer must not leave the run queued with no message. A duplicate is harmless (the
    # worker's claim is conditional on `queued`).
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION)
    output = ToolOutput(tool_call_id="toolu_1", output="Paris")
    assert actions.submit_tool_outputs(CALLER, run.run_id, [output]).resumed
    again = actions.submit_tool_outputs(CALLER, run.run_id, [output])
    assert not again.resumed and again.run.status is RunStatus.QUEUED
    assert len(queue.messages) == 2


def test_the_same_answer_after_a_worker_took_the_run_sends_nothing(answering):
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION)
    output = ToolOutput(tool_call_id="toolu_1", output="Paris")
    assert actions.submit_tool_outputs(CALLER, run.run_id, [output]).resumed
    store.transition(CALLER.org_id, run.run_id, RunStatus.RUNNING)
    again = actions.submit_tool_outputs(CALLER, run.run_id, [output])
    assert not again.resumed and again.run.status is RunStatus.RUNNING
    assert len(queue.messages) == 1
    with pytest.raises(NotWaitingError):
        actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id="toolu_1", output="Lyon")])


def test_a_failed_enqueue_puts_the_run_back_to_waiting_and_the_same_answer_requeues_it(answering):
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION)
    output = ToolOutput(tool_call_id="toolu_1", output="Paris")
    queue.fail_next = True
    with pytest.raises(QueueUnavailableError):
        actions.submit_tool_outputs(CALLER, run.run_id, [output])
    back = store.get_run(CALLER.org_id, run.run_id)
    assert back.status is RunStatus.REQUIRES_ACTION and queue.messages == []
    assert back.actions[0].output == output  # the answer is kept
    assert back.action_expires_at == run.action_expires_at  # and the wait still has its deadline
    assert store.overdue_waiting_runs(now=run.action_expires_at, limit=10) == [(CALLER.org_id, run.run_id)]
    retried = actions.submit_tool_outputs(CALLER, run.run_id, [output])
    assert retried.resumed and retried.run.status is RunStatus.QUEUED
    assert queue.messages == [RunMessage(run_id=run.run_id, org_id=CALLER.org_id)]


def test_another_orgs_run_is_not_found(answering):
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION, org="other-org")
    with pytest.raises(RunNotFoundError):
        actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id="toolu_1", output="Paris")])
    assert not store.get_run("other-org", run.run_id).actions[0].answered


def test_a_run_that_never_asked_for_anything_is_not_waiting(answering):
    store, queue, actions, clock = answering
    run_id = "run_" + uuid.uuid4().hex
    store.create_run(RunRecord(
        run_id=run_id, org_id="acme", user_id="u1", agent_id="ag_chat", status=RunStatus.QUEUED,
        request=RunRequest(task="t"), created_at=clock(), expires_at=int(clock()) + 300,
    ))
    with pytest.raises(NotWaitingError):
        actions.submit_tool_outputs(CALLER, run_id, [ToolOutput(tool_call_id="toolu_1", output="Paris")])


def test_answers_racing_one_another_are_both_kept_and_the_run_is_queued_once(answering):
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION, CALCULATION)
    decision = ApprovalDecision(approval_id=the_approval_id(run), approved=True)
    real_record = store.record_answers
    raced = []

    def record_after_a_rival(current, updated, *, requeue):
        if not raced:  # a second client's answer lands between this one's read and its write
            raced.append(True)
            rival = store.get_run(CALLER.org_id, run.run_id)
            real_record(rival, apply_decisions(rival, [decision]), requeue=False)
        return real_record(current, updated, requeue=requeue)

    store.record_answers = record_after_a_rival
    result = actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id="toolu_1", output="Paris")])
    assert result.resumed and len(queue.messages) == 1
    stored = store.get_run(CALLER.org_id, run.run_id)
    assert stored.actions[0].output.output == "Paris" and stored.actions[1].decision == decision


def test_an_answer_to_a_cancelled_run_is_not_waiting(answering):
    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION)
    RunService(store, queue, default_catalog(), RunServicePolicy(), clock).cancel(CALLER, run.run_id)
    with pytest.raises(NotWaitingError):
        actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id="toolu_1", output="Paris")])
    assert queue.messages == []



def test_answers_too_large_to_keep_on_the_run_are_refused_and_nothing_is_recorded(answering):
    from runwire.errors import RequestTooLargeError

    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION)
    huge = ToolOutput(tool_call_id="toolu_1", output="x" * 70_000)
    with pytest.raises(RequestTooLargeError):
        actions.submit_tool_outputs(CALLER, run.run_id, [huge])
    assert not store.get_run(CALLER.org_id, run.run_id).actions[0].answered and queue.messages == []


def test_a_request_answering_both_kinds_is_kept_whole_or_not_at_all(answering):
    from runwire.core.actions import RunAnswers

    store, queue, actions, clock = answering
    run = suspend_new_run(store, clock, LOCATION, CALCULATION)
    bad = RunAnswers(outputs=[ToolOutput(tool_call_id="toolu_1", output="Paris")],
                     decisions=[ApprovalDecision(approval_id="apr_not_issued", approved=True)])
    with pytest.raises(NotWaitingError):
        actions.submit(CALLER, run.run_id, bad)
    assert not any(a.answered for a in store.get_run(CALLER.org_id, run.run_id).actions), "nothing half kept"
    good = RunAnswers(outputs=[ToolOutput(tool_call_id="toolu_1", output="Paris")],
                      decisions=[ApprovalDecision(approval_id=the_approval_id(run), approved=True)])
    assert actions.submit(CALLER, run.run_id, good).resumed and len(queue.messages) == 1
