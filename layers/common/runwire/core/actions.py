"""Answering a waiting run: client tool outputs and approvals, checked, recorded and re-queued.

An answer is checked against what the server asked for (the run's pending actions): a tool call
id or approval id the run is not waiting for, or a second answer that differs from the first, is
`NotWaitingError` (409). The same answer twice is accepted again (idempotent), even after the run
has moved on. Answers are recorded with a conditional write on the actions as they were read, so
two clients answering at once cannot lose one another's answers; the write that completes the set
also moves the run to `queued`, and its message is enqueued so a worker carries the run on.

The sweep ends the runs whose client never answered (`ACTION_TIMEOUT_SECONDS`), so no reader
waits for ever; readers and `GET /v1/runs/{id}` do the same for the run they look at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..errors import (
    ConditionFailedError,
    NotWaitingError,
    QueueUnavailableError,
    RequestTooLargeError,
    RunConflictError,
)
from .ending import ACTION_TIMED_OUT, approval_id, end_stopped_run, input_hash, is_overdue
from .models import (
    ApprovalAction,
    ApprovalDecision,
    Caller,
    ClientToolAction,
    PendingAction,
    RunMessage,
    RunRecord,
    RunStatus,
    ToolOutput,
)
from .ports import Clock, RunQueue, RunStore

log = logging.getLogger("runwire.actions")

ANSWER_ATTEMPTS = 5
"""Answers racing one another re-read and re-apply; each lost race means another answer landed."""


def apply_tool_outputs(run: RunRecord, outputs: list[ToolOutput]) -> list[PendingAction]:
    """The run's actions with these client tool outputs recorded."""
    return _recorded(run, [(output.tool_call_id, output) for output in outputs], "output")


def apply_decisions(run: RunRecord, decisions: list[ApprovalDecision]) -> list[PendingAction]:
    """The run's actions with these approvals or denials recorded."""
    return _recorded(run, [(decision.approval_id, decision) for decision in decisions], "decision")


def _recorded(
    run: RunRecord, answers: list[tuple[str, ToolOutput | ApprovalDecision]], kind: Literal["output", "decision"]
) -> list[PendingAction]:
    """Each answer recorded on the pending action it answers (by tool call id for an output, by
    approval id for a decision); NotWaitingError for one the run did not ask for, or that differs
    from the answer already given. The same answer again changes nothing."""
    actions = list(run.actions or [])
    for key, answer in answers:
        index = next((i for i, pending in enumerate(actions) if _answers(run, pending, kind) == key), None)
        if index is None:
            raise NotWaitingError(f"run {run.run_id!r} is not waiting for {_WHAT[kind]} {key!r}")
        given = getattr(actions[index], kind)
        if given is not None:
            if given != answer:
                raise NotWaitingError(f"{_WHAT[kind]} {key!r} was answered already, differently")
            continue
        actions[index] = actions[index].model_copy(update={kind: answer})
    return actions


_WHAT = {"output": "the output of tool call", "decision": "approval"}


def _answers(run: RunRecord, pending: PendingAction, kind: str) -> str | None:
    """The id an answer of `kind` names this pending action by, or None if it takes no such answer."""
    action = pending.action
    if kind == "output":
        return action.tool_call_id if isinstance(action, ClientToolAction) else None
    return action.approval_id if isinstance(action, ApprovalAction) and _still_bound(run, pending) else None


MAX_ACTIONS_BYTES = 64_000
"""The pending actions and their answers live on the run's item, beside its request (DynamoDB items
hold 400 KB): larger answers belong in a file or behind a URL."""


def check_size(actions: list[PendingAction]) -> None:
    size = sum(len(action.model_dump_json(by_alias=True, exclude_none=True).encode()) for action in actions)
    if size > MAX_ACTIONS_BYTES:
        raise RequestTooLargeError(
            f"the answers come to {size:,} bytes with what the run asked; at most {MAX_ACTIONS_BYTES:,} are kept "
            "(send large results by reference, e.g. a URL)"
        )


def _still_bound(run: RunRecord, pending: PendingAction) -> bool:
    """The approval id is the one this server issued for this run, call and input."""
    action = pending.action
    return (
        isinstance(action, ApprovalAction)
        and pending.input_hash == input_hash(action.input)
        and action.approval_id == approval_id(run.run_id, action.tool_call_id, action.input)
    )


@dataclass(frozen=True)
class RunAnswers:
    """What one request answers of a run's wait: client tool outputs and approval decisions."""

    outputs: list[ToolOutput] = field(default_factory=list)
    decisions: list[ApprovalDecision] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.outputs and not self.decisions


@dataclass(frozen=True)
class AnswerResult:
    run: RunRecord
    resumed: bool
    """This answer completed the set and re-queued the run."""


class ActionService:
    def __init__(self, store: RunStore, queue: RunQueue, clock: Clock, read: Callable[[Caller, str], RunRecord]) -> None:
        self._store = store
        self._queue = queue
        self._clock = clock
        self._read = read
        """Reads the caller's run (404 for another org's), ending it first if its wait is overdue."""

    def submit_tool_outputs(self, caller: Caller, run_id: str, outputs: list[ToolOutput]) -> AnswerResult:
        return self._answer(caller, run_id, lambda run: apply_tool_outputs(run, outputs))

    def submit_decisions(self, caller: Caller, run_id: str, decisions: list[ApprovalDecision]) -> AnswerResult:
        return self._answer(caller, run_id, lambda run: apply_decisions(run, decisions))

    def submit(self, caller: Caller, run_id: str, answers: RunAnswers) -> AnswerResult:
        """Tool outputs and decisions together, checked together and recorded in one write: a request
        that answers both kinds is never half kept."""

        def apply_both(run: RunRecord) -> list[PendingAction]:
            with_outputs = run.model_copy(update={"actions": apply_tool_outputs(run, answers.outputs)})
            return apply_decisions(with_outputs, answers.decisions)

        return self._answer(caller, run_id, apply_both)

    def _answer(self, caller: Caller, run_id: str, apply: Callable[[RunRecord], list[PendingAction]]) -> AnswerResult:
        for _ in range(ANSWER_ATTEMPTS):
            run = self._read(caller, run_id)
            if run.actions is None:
                raise NotWaitingError(f"run {run_id!r} is {run.status.value}; it has asked its client for nothing")
            updated = apply(run)
            check_size(updated)
            complete = all(action.answered for action in updated)
            if run.status is not RunStatus.REQUIRES_ACTION:
                if updated == run.actions:
                    if run.status is RunStatus.QUEUED and complete:
                        # The answers re-queued it, but the message may never have been sent (the
                        # answering process died in between): send it again. A second message for
                        # a run already claimed is dropped by the claim's condition.
                        self._queue.enqueue(RunMessage(run_id=run.run_id, org_id=run.org_id))
                    return AnswerResult(run, resumed=False)  # the same answer again, after the run moved on
                raise NotWaitingError(f"run {run_id!r} is {run.status.value}; it is not waiting for an answer")
            if updated == run.actions and not complete:
                return AnswerResult(run, resumed=False)
            try:
                recorded = self._store.record_answers(run, updated, requeue=complete)
            except ConditionFailedError:
                continue  # another answer or a cancel landed first: read again and re-apply
            if complete:
                self._enqueue(recorded, action_expires_at=run.action_expires_at)
            log.info("answers recorded%s", "; run re-queued" if complete else "", extra={"run_id": run_id})
            return AnswerResult(recorded, resumed=complete)
        raise RunConflictError(f"run {run_id!r} is being answered by others at the same time; try again")

    def _enqueue(self, run: RunRecord, *, action_expires_at: float | None) -> None:
        try:
            self._queue.enqueue(RunMessage(run_id=run.run_id, org_id=run.org_id))
        except QueueUnavailableError:
            # Nothing half-written: put the run back to waiting (its answers kept, its deadline
            # restored so the sweep still finds it), so the same answer sent again re-queues it.
            try:
                restored = {"action_expires_at": action_expires_at} if action_expires_at is not None else None
                self._store.transition(run.org_id, run.run_id, RunStatus.REQUIRES_ACTION, changes=restored)
            except ConditionFailedError:
                log.warning("the run moved on before its re-queue could be undone", extra={"run_id": run.run_id})
            raise


def expire_overdue(store: RunStore, run: RunRecord, now: float, *, retention_seconds: float | None = None) -> RunRecord:
    """The run, ended `expired` first if it waited for its client past its action deadline."""
    if not is_overdue(run, now):
        return run
    try:
        ended = end_stopped_run(store, run, RunStatus.EXPIRED, ACTION_TIMED_OUT, now,
                                retention_seconds=retention_seconds)
        log.info("run waited past its action deadline; expired", extra={"run_id": run.run_id})
        return ended
    except ConditionFailedError:
        return store.get_run(run.org_id, run.run_id) or run  # someone else ended or answered it meanwhile


class WaitSweeper:
    """What the scheduled sweep runs: end every run whose client did not answer in time."""

    def __init__(
        self, store: RunStore, clock: Clock, *, horizon_seconds: float | None = None,
        retention_seconds: float | None = None, batch: int = 100,
    ) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention_seconds
        self._horizon = horizon_seconds
        """How long after its action deadline a waiting run can still exist (its TTL): older index
        entries belong to runs already gone (DynamoDB deletes them up to two days late), and are
        not looked at, so they can never crowd out the live ones."""
        self._batch = batch

    def sweep(self) -> int:
        """Runs ended; loops until no overdue run is left."""
        ended = 0
        while True:
            now = self._clock()
            since = now - self._horizon if self._horizon is not None else 0.0
            overdue = self._store.overdue_waiting_runs(now=now, limit=self._batch, since=since)
            progressed = 0
            for org_id, run_id in overdue:
                run = self._store.get_run(org_id, run_id)
                if run is None or not is_overdue(run, self._clock()):
                    continue  # gone, answered or ended meanwhile (the index lags the table)
                try:
                    end_stopped_run(self._store, run, RunStatus.EXPIRED, ACTION_TIMED_OUT, self._clock(),
                                    retention_seconds=self._retention)
                    progressed += 1
                except ConditionFailedError:
                    continue  # a reader, a cancel or an answer got there first
            ended += progressed
            if len(overdue) < self._batch or progressed == 0:
                return ended
