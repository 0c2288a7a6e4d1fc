"""One suite, two adapters: the in-memory fake must behave exactly like DynamoDB (on a moto server).

A fake that drifts from the real adapter fails here, so unit tests built on fakes stay honest.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from runwire.adapters.dynamodb import DynamoDBRunStore
from runwire.adapters.memory import InMemoryRunStore
from runwire.core.ending import pending_action
from runwire.core.models import (
    ApprovalDecision,
    EndChunk,
    ErrorChunk,
    Lease,
    RequiresActionChunk,
    RunError,
    RunRecord,
    RunRequest,
    RunStatus,
    StepEndChunk,
    TextChunk,
    ToolOutput,
    ToolUseChunk,
    Usage,
    UsageChunk,
)
from runwire.core.transcript import ToolCallBlock
from runwire.errors import ConditionFailedError, LeaseLostError


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


def test_run_id_cannot_be_taken_by_another_run_but_the_same_run_again_is_written_once(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock)
    store.create_run(run)
    store.create_run(run)  # a retry after the first committed (its answer lost): the same run, once
    assert store.get_run("acme", run.run_id) == run
    with pytest.raises(ConditionFailedError):
        store.create_run(run.model_copy(update={"request": RunRequest(task="another")}))


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


# --- waiting for the client: atomic endings and suspensions, answers, the sweep's index -----------
LOCATION = ToolCallBlock("toolu_1", "get_location", {"precision": "city"}, executor="client")
CALCULATION = ToolCallBlock("toolu_2", "calculator", {"expression": "17 * 23"}, needs_approval=True)
USAGE = Usage(model="m", input_tokens=12, output_tokens=5)


def running_run(store, clock, **changes) -> RunRecord:
    run = new_run(clock, **changes)
    store.create_run(run)
    return store.transition("acme", run.run_id, RunStatus.RUNNING, changes={"started_at": clock()})


def suspended_run(store, clock, *calls: ToolCallBlock, deadline: float = 3600.0):
    """A running run that stops at `calls`: chunk 1 is text, then its tool calls, its step_end and
    the requires_action chunk, written by one suspend."""
    run = running_run(store, clock)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="let me check"), expires_at=run.expires_at)
    pending = [pending_action(run.run_id, call) for call in calls]
    for offset, call in enumerate(calls, start=2):
        store.append_chunk("acme", run.run_id, offset, ToolUseChunk(id=call.id, name=call.name, input=call.input,
                                                                    executor=call.executor), expires_at=run.expires_at)
    chunks = [StepEndChunk(step=1, model="m", input_tokens=12, output_tokens=5),
              RequiresActionChunk(actions=[p.action for p in pending], expires_at="2027-01-15T09:00:00.000Z")]
    waiting = store.suspend("acme", run.run_id, first_seq=len(calls) + 2, chunks=chunks, actions=pending,
                            action_expires_at=clock() + deadline, usage=USAGE, expires_at=int(clock()) + 5000)
    return waiting, pending


def test_finish_writes_its_preceding_chunks_and_the_end_in_one_go(store_and_clock):
    store, clock = store_and_clock
    run = running_run(store, clock)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=run.expires_at)
    preceding = [StepEndChunk(step=1, model="m", input_tokens=3, output_tokens=4),
                 ErrorChunk(code="model_overloaded", message="busy"),
                 UsageChunk(model="m", input_tokens=3, output_tokens=4)]
    store.finish("acme", run.run_id, RunStatus.FAILED, expected=RunStatus.RUNNING, end_seq=2, finished_at=clock(),
                 usage=USAGE, error=RunError(code="model_overloaded", message="busy"), preceding=preceding)
    chunks = store.read_chunks("acme", run.run_id, after=0, consistent=True)
    assert [c.seq for c in chunks] == [1, 2, 3, 4, 5]
    assert [c.chunk for c in chunks[1:]] == [*preceding, EndChunk(status=RunStatus.FAILED)]
    assert store.get_run("acme", run.run_id).status is RunStatus.FAILED


def test_finish_writes_none_of_its_chunks_when_one_of_their_seqs_is_taken(store_and_clock):
    store, clock = store_and_clock
    run = running_run(store, clock)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=run.expires_at)
    store.append_chunk("acme", run.run_id, 3, TextChunk(text="another writer"), expires_at=run.expires_at)
    with pytest.raises(ConditionFailedError):
        store.finish("acme", run.run_id, RunStatus.SUCCEEDED, expected=RunStatus.RUNNING, end_seq=2,
                     finished_at=clock(), usage=USAGE, error=None,
                     preceding=[UsageChunk(model="m", input_tokens=12, output_tokens=5)])
    assert store.read_chunks("acme", run.run_id, after=1, consistent=True) == []  # seq 2 (the usage) not written
    assert [c.chunk for c in store.read_chunks("acme", run.run_id, after=2, consistent=True)] == [
        TextChunk(text="another writer")]  # nor the end at 4
    stored = store.get_run("acme", run.run_id)
    assert (stored.status, stored.usage, stored.finished_at) == (RunStatus.RUNNING, None, None)


def test_suspend_stores_the_wait_its_actions_and_its_chunks_together(store_and_clock):
    store, clock = store_and_clock
    waiting, pending = suspended_run(store, clock, LOCATION, CALCULATION)
    stored = store.get_run("acme", waiting.run_id)
    assert stored == waiting
    assert stored.status is RunStatus.REQUIRES_ACTION
    assert stored.actions == pending
    assert (stored.action_expires_at, stored.last_seq, stored.usage, stored.expires_at) == (
        clock() + 3600, 5, USAGE, int(clock()) + 5000)
    chunks = store.read_chunks("acme", waiting.run_id, after=0, consistent=True)
    assert [c.seq for c in chunks] == [1, 2, 3, 4, 5]
    assert isinstance(chunks[3].chunk, StepEndChunk)
    assert chunks[4].chunk.actions == [p.action for p in pending]


def test_only_a_running_run_can_be_suspended(store_and_clock):
    store, clock = store_and_clock
    queued = new_run(clock)
    store.create_run(queued)
    action = [pending_action(queued.run_id, LOCATION)]
    required = [RequiresActionChunk(actions=[action[0].action], expires_at="2027-01-15T09:00:00.000Z")]
    with pytest.raises(ConditionFailedError):
        store.suspend("acme", queued.run_id, first_seq=1, chunks=required, actions=action,
                      action_expires_at=clock() + 60, usage=None, expires_at=int(clock()) + 600)
    assert store.read_chunks("acme", queued.run_id, after=0, consistent=True) == []
    assert store.get_run("acme", queued.run_id) == queued

    waiting, pending = suspended_run(store, clock, LOCATION)
    with pytest.raises(ConditionFailedError):  # waiting already: no second suspend
        store.suspend("acme", waiting.run_id, first_seq=waiting.last_seq + 1, chunks=required, actions=pending,
                      action_expires_at=clock() + 60, usage=None, expires_at=int(clock()) + 600)
    assert store.read_chunks("acme", waiting.run_id, after=waiting.last_seq, consistent=True) == []


def test_suspend_writes_nothing_when_one_of_its_seqs_is_taken(store_and_clock):
    store, clock = store_and_clock
    run = running_run(store, clock)
    store.append_chunk("acme", run.run_id, 2, TextChunk(text="another writer"), expires_at=run.expires_at)
    action = [pending_action(run.run_id, LOCATION)]
    chunks = [StepEndChunk(step=1, model="m", input_tokens=1, output_tokens=1),
              RequiresActionChunk(actions=[action[0].action], expires_at="2027-01-15T09:00:00.000Z")]
    with pytest.raises(ConditionFailedError):
        store.suspend("acme", run.run_id, first_seq=1, chunks=chunks, actions=action,
                      action_expires_at=clock() + 60, usage=None, expires_at=int(clock()) + 600)
    assert store.read_chunks("acme", run.run_id, after=0, consistent=True) == []
    stored = store.get_run("acme", run.run_id)
    assert (stored.status, stored.actions, stored.last_seq) == (RunStatus.RUNNING, None, 0)


def test_record_answers_is_conditional_on_the_actions_it_read(store_and_clock):
    store, clock = store_and_clock
    waiting, pending = suspended_run(store, clock, LOCATION, CALCULATION)
    output = ToolOutput(tool_call_id="toolu_1", output={"city": "Paris"})
    decision = ApprovalDecision(approval_id=pending[1].action.approval_id, approved=False, reason="no")
    first = store.record_answers(waiting, [pending[0].model_copy(update={"output": output}), pending[1]], requeue=False)
    assert first.status is RunStatus.REQUIRES_ACTION and first.actions[0].output == output
    with pytest.raises(ConditionFailedError):  # `waiting` is stale now: this answer would erase the first
        store.record_answers(waiting, [pending[0], pending[1].model_copy(update={"decision": decision})],
                             requeue=False)
    stored = store.get_run("acme", waiting.run_id)
    assert stored.actions == first.actions and stored.actions[1].decision is None
    both = [stored.actions[0], stored.actions[1].model_copy(update={"decision": decision})]
    assert store.record_answers(stored, both, requeue=False).actions == both  # re-read, re-applied: both kept


def test_the_answer_that_requeues_moves_the_run_to_queued_and_out_of_the_sweeps_index(store_and_clock):
    store, clock = store_and_clock
    waiting, pending = suspended_run(store, clock, LOCATION, deadline=60)
    answered = [pending[0].model_copy(update={"output": ToolOutput(tool_call_id="toolu_1", output="Paris")})]
    queued = store.record_answers(waiting, answered, requeue=True)
    stored = store.get_run("acme", waiting.run_id)
    assert stored == queued
    assert (stored.status, stored.actions, stored.action_expires_at, stored.last_seq) == (
        RunStatus.QUEUED, answered, None, waiting.last_seq)
    assert (("acme", waiting.run_id)) not in store.overdue_waiting_runs(now=clock() + 120, limit=1000)
    with pytest.raises(ConditionFailedError):  # no longer waiting: a second requeue loses
        store.record_answers(stored, answered, requeue=True)
    assert store.transition("acme", waiting.run_id, RunStatus.RUNNING).status is RunStatus.RUNNING  # a worker claims it


def test_a_waiting_run_ended_by_a_cancel_takes_no_more_answers(store_and_clock):
    store, clock = store_and_clock
    waiting, pending = suspended_run(store, clock, LOCATION)
    store.finish("acme", waiting.run_id, RunStatus.CANCELLED, expected=RunStatus.REQUIRES_ACTION,
                 end_seq=waiting.last_seq + 1, finished_at=clock(), usage=waiting.usage, error=None,
                 preceding=[UsageChunk(model="m", input_tokens=12, output_tokens=5)])
    answered = [pending[0].model_copy(update={"output": ToolOutput(tool_call_id="toolu_1", output="Paris")})]
    with pytest.raises(ConditionFailedError):
        store.record_answers(waiting, answered, requeue=True)
    stored = store.get_run("acme", waiting.run_id)
    assert stored.status is RunStatus.CANCELLED and stored.action_expires_at is None
    assert [c.chunk.type for c in store.read_chunks("acme", waiting.run_id, after=waiting.last_seq, consistent=True)] == [
        "usage", "end"]


def test_a_requeued_run_suspends_again_after_its_last_seq(store_and_clock):
    store, clock = store_and_clock
    waiting, pending = suspended_run(store, clock, LOCATION)
    answered = [pending[0].model_copy(update={"output": ToolOutput(tool_call_id="toolu_1", output="Paris")})]
    store.record_answers(waiting, answered, requeue=True)
    store.transition("acme", waiting.run_id, RunStatus.RUNNING)
    second = [pending_action(waiting.run_id, CALCULATION)]
    again = store.suspend("acme", waiting.run_id, first_seq=waiting.last_seq + 1,
                          chunks=[RequiresActionChunk(actions=[second[0].action], expires_at="2027-01-15T10:00:00.000Z")],
                          actions=second, action_expires_at=clock() + 7200, usage=USAGE, expires_at=int(clock()) + 9000)
    assert (again.status, again.actions, again.last_seq) == (RunStatus.REQUIRES_ACTION, second, waiting.last_seq + 1)
    assert store.get_run("acme", waiting.run_id) == again


def test_cancel_state_reads_only_the_status_and_the_cancel_flag(store_and_clock):
    store, clock = store_and_clock
    run = new_run(clock, retention=60)
    store.create_run(run)
    assert store.cancel_state("acme", run.run_id) == (RunStatus.QUEUED, False)
    assert store.cancel_state("other-org", run.run_id) is None
    assert store.cancel_state("acme", "run_missing") is None
    store.transition("acme", run.run_id, RunStatus.RUNNING)
    assert store.cancel_state("acme", run.run_id) == (RunStatus.RUNNING, False)
    store.request_cancel("acme", run.run_id)
    assert store.cancel_state("acme", run.run_id) == (RunStatus.RUNNING, True)
    clock.now += 61
    assert store.cancel_state("acme", run.run_id) is None  # expired reads as gone


def test_extend_chunks_keeps_a_waiting_runs_early_chunks_past_their_first_expiry(store_and_clock):
    store, clock = store_and_clock
    kept, lost = running_run(store, clock, retention=10), running_run(store, clock, retention=10)
    for subject in (kept, lost):
        for seq in (1, 2):  # written to live as long as the first stretch of work
            store.append_chunk("acme", subject.run_id, seq, TextChunk(text=str(seq)), expires_at=subject.expires_at)
        action = [pending_action(subject.run_id, LOCATION)]
        store.suspend("acme", subject.run_id, first_seq=3,
                      chunks=[RequiresActionChunk(actions=[action[0].action], expires_at="2027-01-15T09:00:00.000Z")],
                      actions=action, action_expires_at=clock() + 900, usage=None, expires_at=int(clock()) + 1000)
    store.extend_chunks("acme", kept.run_id, through_seq=3, expires_at=int(clock()) + 1000)
    store.extend_chunks("acme", kept.run_id, through_seq=3, expires_at=int(clock()) + 500)  # never shortens
    clock.now += 600
    assert [c.seq for c in store.read_chunks("acme", kept.run_id, after=0, consistent=True)] == [1, 2, 3]
    assert store.read_chunks("acme", lost.run_id, after=0, consistent=True) == []  # what extending prevents
    assert store.get_run("acme", lost.run_id).status is RunStatus.REQUIRES_ACTION  # the run itself lives on


def test_extend_chunks_leaves_later_chunks_alone(store_and_clock):
    store, clock = store_and_clock
    run = running_run(store, clock, retention=10)
    for seq in (1, 2, 3):
        store.append_chunk("acme", run.run_id, seq, TextChunk(text=str(seq)), expires_at=run.expires_at)
    store.transition("acme", run.run_id, RunStatus.EXPIRED, changes={"expires_at": int(clock()) + 1000})
    store.extend_chunks("acme", run.run_id, through_seq=2, expires_at=int(clock()) + 1000)
    clock.now += 11
    assert [c.chunk.text for c in store.read_chunks("acme", run.run_id, after=0, limit=2, consistent=True)] == ["1", "2"]
    assert store.read_chunks("acme", run.run_id, after=2, consistent=True) == []  # chunk 3 expired


def test_overdue_waiting_runs_finds_only_waiting_runs_past_their_deadline(store_and_clock):
    store, clock = store_and_clock
    soon, _ = suspended_run(store, clock, LOCATION, deadline=100)
    sooner, _ = suspended_run(store, clock, LOCATION, deadline=50)
    later, _ = suspended_run(store, clock, LOCATION, deadline=1000)
    running = running_run(store, clock)
    ours = {soon.run_id, sooner.run_id, later.run_id, running.run_id}

    def overdue_at(now):
        # The DynamoDB table is shared by the whole session: look only at this test's runs.
        return [run_id for org, run_id in store.overdue_waiting_runs(now=now, limit=1000) if run_id in ours]

    assert overdue_at(clock() + 49) == []
    assert overdue_at(clock() + 200) == [sooner.run_id, soon.run_id]  # earliest deadline first
    store.finish("acme", soon.run_id, RunStatus.EXPIRED, expected=RunStatus.REQUIRES_ACTION,
                 end_seq=soon.last_seq + 1, finished_at=clock(), usage=None,
                 error=RunError(code="action_timed_out", message="late"))
    assert overdue_at(clock() + 200) == [sooner.run_id]
    assert overdue_at(clock() + 2000) == [sooner.run_id, later.run_id]


def test_an_undone_requeue_puts_the_run_back_in_the_sweeps_index(store_and_clock):
    store, clock = store_and_clock
    waiting, pending = suspended_run(store, clock, LOCATION, deadline=60)
    answered = [pending[0].model_copy(update={"output": ToolOutput(tool_call_id="toolu_1", output="Paris")})]
    store.record_answers(waiting, answered, requeue=True)
    back = store.transition("acme", waiting.run_id, RunStatus.REQUIRES_ACTION,
                            changes={"action_expires_at": waiting.action_expires_at})
    assert (back.status, back.actions, back.action_expires_at) == (RunStatus.REQUIRES_ACTION, answered,
                                                                   waiting.action_expires_at)
    overdue = store.overdue_waiting_runs(now=clock() + 120, limit=1000)
    assert ("acme", waiting.run_id) in overdue


def test_a_running_run_with_a_cancel_requested_cannot_be_suspended(store_and_clock):
    store, clock = store_and_clock
    run = running_run(store, clock)
    store.request_cancel("acme", run.run_id)
    action = [pending_action(run.run_id, LOCATION)]
    required = [RequiresActionChunk(actions=[action[0].action], expires_at="2027-01-15T09:00:00.000Z")]
    with pytest.raises(ConditionFailedError):
        store.suspend("acme", run.run_id, first_seq=1, chunks=required, actions=action,
                      action_expires_at=clock() + 60, usage=None, expires_at=int(clock()) + 600)
    assert store.read_chunks("acme", run.run_id, after=0, consistent=True) == []
    assert store.get_run("acme", run.run_id).status is RunStatus.RUNNING


def test_a_waiting_run_is_not_flagged_for_cancel_but_ended(store_and_clock):
    store, clock = store_and_clock
    waiting, _ = suspended_run(store, clock, LOCATION)
    with pytest.raises(ConditionFailedError):
        store.request_cancel("acme", waiting.run_id)


def test_an_end_without_usage_keeps_the_usage_the_run_recorded(store_and_clock):
    store, clock = store_and_clock
    run = running_run(store, clock)
    action = [pending_action(run.run_id, LOCATION)]
    required = [RequiresActionChunk(actions=[action[0].action], expires_at="2027-01-15T09:00:00.000Z")]
    usage = Usage(model="m", input_tokens=5, output_tokens=2)
    store.suspend("acme", run.run_id, first_seq=1, chunks=required, actions=action,
                  action_expires_at=clock() + 60, usage=usage, expires_at=int(clock()) + 600)
    ended = store.finish("acme", run.run_id, RunStatus.CANCELLED, expected=RunStatus.REQUIRES_ACTION, end_seq=2,
                         finished_at=clock(), usage=None, error=None)
    assert ended.usage == usage and store.get_run("acme", run.run_id).usage == usage


def test_finish_with_a_retention_keeps_the_run_until_then_and_no_longer(store_and_clock):
    store, clock = store_and_clock
    run = running_run(store, clock)
    ended = store.finish("acme", run.run_id, RunStatus.SUCCEEDED, expected=RunStatus.RUNNING, end_seq=1,
                         finished_at=clock(), usage=None, error=None, retain_until=int(clock()) + 2)
    assert ended.expires_at == int(clock()) + 2
    assert store.get_run("acme", run.run_id).expires_at == int(clock()) + 2
    assert [c.chunk.type for c in store.read_chunks("acme", run.run_id, after=0, consistent=True)] == ["end"]


# --- leases: claim, take-over, renewal, fencing ------------------------------------------------------
def claimed(store, clock, owner="w1", lease_for=10.0):
    run = new_run(clock)
    store.create_run(run)
    return store.claim("acme", run.run_id, lease=Lease(owner, clock() + lease_for), now=clock(),
                       expires_at=int(clock()) + 600)


def test_a_claim_holds_a_queued_run_under_its_lease_and_counts_the_attempt(store_and_clock):
    store, clock = store_and_clock
    run = claimed(store, clock)
    assert (run.status, run.lease_owner, run.lease_expires_at, run.attempts, run.takeovers) == (
        RunStatus.RUNNING, "w1", clock() + 10, 1, 0)
    assert run.started_at == clock() and run.expires_at == int(clock()) + 600
    with pytest.raises(ConditionFailedError):
        store.claim("acme", run.run_id, lease=Lease("w2", clock() + 10), now=clock(), expires_at=int(clock()) + 600)


def test_a_run_is_taken_over_only_once_its_holders_lease_has_lapsed(store_and_clock):
    store, clock = store_and_clock
    run = claimed(store, clock)
    with pytest.raises(ConditionFailedError):
        store.take_over("acme", run.run_id, lease=Lease("w2", clock() + 20), previous_owner="w1", now=clock())
    clock.now += 11
    with pytest.raises(ConditionFailedError):  # the previous holder must be the one it saw
        store.take_over("acme", run.run_id, lease=Lease("w2", clock() + 10), previous_owner="someone", now=clock())
    taken = store.take_over("acme", run.run_id, lease=Lease("w2", clock() + 10), previous_owner="w1", now=clock())
    assert (taken.status, taken.lease_owner, taken.attempts, taken.takeovers) == (RunStatus.RUNNING, "w2", 2, 1)
    with pytest.raises(ConditionFailedError):  # a second taker that saw the same lapse loses
        store.take_over("acme", run.run_id, lease=Lease("w3", clock() + 10), previous_owner="w1", now=clock())


def test_renewal_extends_the_holders_lease_records_its_usage_and_answers_the_cancel_flag(store_and_clock):
    store, clock = store_and_clock
    run = claimed(store, clock)
    usage = Usage(model="m", input_tokens=12, output_tokens=3)
    assert store.renew_lease("acme", run.run_id, lease=Lease("w1", clock() + 30), live_usage=usage) == (
        RunStatus.RUNNING, False)
    store.request_cancel("acme", run.run_id)
    assert store.renew_lease("acme", run.run_id, lease=Lease("w1", clock() + 30), live_usage=None) == (
        RunStatus.RUNNING, True)
    current = store.get_run("acme", run.run_id)
    assert current.lease_expires_at == clock() + 30 and current.live_usage == usage


def test_a_superseded_worker_can_renew_nothing_write_nothing_and_end_nothing(store_and_clock):
    store, clock = store_and_clock
    run = claimed(store, clock)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=int(clock()) + 600, owner="w1")
    clock.now += 11
    store.take_over("acme", run.run_id, lease=Lease("w2", clock() + 10), previous_owner="w1", now=clock())
    with pytest.raises(LeaseLostError):
        store.renew_lease("acme", run.run_id, lease=Lease("w1", clock() + 10), live_usage=None)
    with pytest.raises(LeaseLostError):
        store.append_chunk("acme", run.run_id, 2, TextChunk(text="stale"), expires_at=int(clock()) + 600, owner="w1")
    with pytest.raises(LeaseLostError):
        store.finish("acme", run.run_id, RunStatus.FAILED, expected=RunStatus.RUNNING, end_seq=2, finished_at=clock(),
                     usage=None, error=RunError(code="run_timed_out", message="late"), owner="w1")
    assert [c.chunk for c in store.read_chunks("acme", run.run_id, after=0, consistent=True)] == [TextChunk(text="a")]
    store.append_chunk("acme", run.run_id, 2, TextChunk(text="b"), expires_at=int(clock()) + 600, owner="w2")
    ended = store.finish("acme", run.run_id, RunStatus.SUCCEEDED, expected=RunStatus.RUNNING, end_seq=3,
                         finished_at=clock(), usage=None, error=None, owner="w2")
    assert ended.status is RunStatus.SUCCEEDED
    assert [c.chunk for c in store.read_chunks("acme", run.run_id, after=0, consistent=True)] == [
        TextChunk(text="a"), TextChunk(text="b"), EndChunk(status=RunStatus.SUCCEEDED)]


def test_a_fenced_write_to_a_taken_seq_is_a_condition_failure_not_a_lost_lease(store_and_clock):
    store, clock = store_and_clock
    run = claimed(store, clock)
    store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=int(clock()) + 600, owner="w1")
    with pytest.raises(ConditionFailedError) as raised:
        store.append_chunk("acme", run.run_id, 1, TextChunk(text="a"), expires_at=int(clock()) + 600, owner="w1")
    assert not isinstance(raised.value, LeaseLostError)


def test_a_superseded_worker_cannot_suspend_the_run(store_and_clock):
    store, clock = store_and_clock
    run = claimed(store, clock)
    clock.now += 11
    store.take_over("acme", run.run_id, lease=Lease("w2", clock() + 10), previous_owner="w1", now=clock())
    with pytest.raises(ConditionFailedError):
        store.suspend("acme", run.run_id, first_seq=1, chunks=[RequiresActionChunk(actions=[], expires_at="x")],
                      actions=[], action_expires_at=clock() + 60, usage=None, expires_at=int(clock()) + 600, owner="w1")
    assert store.get_run("acme", run.run_id).status is RunStatus.RUNNING


def test_lapsed_leases_finds_running_runs_whose_lease_lapsed_in_the_window_and_no_others(store_and_clock):
    store, clock = store_and_clock
    lapsed = claimed(store, clock, owner="w1", lease_for=5)
    live = claimed(store, clock, owner="w2", lease_for=500)
    ended = claimed(store, clock, owner="w3", lease_for=5)
    store.finish("acme", ended.run_id, RunStatus.SUCCEEDED, expected=RunStatus.RUNNING, end_seq=1,
                 finished_at=clock(), usage=None, error=None, owner="w3")
    store.create_run(queued := new_run(clock))
    clock.now += 60
    found = store.lapsed_leases(before=clock(), since=clock() - 3600, limit=10)
    assert ("acme", lapsed.run_id) in found
    assert {("acme", r.run_id) for r in (live, ended, queued)}.isdisjoint(found)
    assert ("acme", lapsed.run_id) not in store.lapsed_leases(before=clock(), since=clock() - 30, limit=10)


@pytest.mark.parametrize("stop", ["finish", "suspend"])
def test_a_holder_can_write_nothing_once_its_run_has_ended_or_waits(store_and_clock, stop):
    store, clock = store_and_clock
    run = claimed(store, clock)
    if stop == "finish":
        store.finish("acme", run.run_id, RunStatus.SUCCEEDED, expected=RunStatus.RUNNING, end_seq=1,
                     finished_at=clock(), usage=None, error=None, owner="w1")
    else:
        store.suspend("acme", run.run_id, first_seq=1, chunks=[RequiresActionChunk(actions=[], expires_at="x")],
                      actions=[], action_expires_at=clock() + 60, usage=None, expires_at=int(clock()) + 600, owner="w1")
    with pytest.raises(LeaseLostError):
        store.append_chunk("acme", run.run_id, 2, TextChunk(text="late"), expires_at=int(clock()) + 600, owner="w1")
    assert [c.seq for c in store.read_chunks("acme", run.run_id, after=0, consistent=True)] == [1]
