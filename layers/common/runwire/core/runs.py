"""The run state machine: every allowed transition, in one table.

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled | expired
      ▲                 │
      │                 ▼
      └──all answered── requires_action ──▶ cancelled | expired (action timeout)

    queued ──cancel (before a worker claims it)──▶ cancelled

`requires_action`: the run waits for its client (client tool outputs, approvals) and no worker
holds it. Answering every pending action re-queues it; a worker then rebuilds it from its log.

The stores enforce this table with conditional writes (`status IN (:allowed_from)`), so two
workers, a worker and a cancel, or two answers can never both win.
"""

from __future__ import annotations

from collections.abc import Callable

from .models import RunRecord, RunStatus

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.RUNNING: frozenset({RunStatus.QUEUED}),
    # From queued only to undo a re-queue whose message could not be enqueued (core/actions.py).
    RunStatus.REQUIRES_ACTION: frozenset({RunStatus.RUNNING, RunStatus.QUEUED}),
    RunStatus.QUEUED: frozenset({RunStatus.REQUIRES_ACTION}),
    RunStatus.SUCCEEDED: frozenset({RunStatus.RUNNING}),
    RunStatus.FAILED: frozenset({RunStatus.RUNNING, RunStatus.QUEUED}),
    RunStatus.CANCELLED: frozenset({RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.REQUIRES_ACTION}),
    RunStatus.EXPIRED: frozenset({RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.REQUIRES_ACTION}),
}


def allowed_sources(target: RunStatus) -> frozenset[RunStatus]:
    """The statuses a run may be in for a move to `target`."""
    return TRANSITIONS.get(target, frozenset())


def can_transition(source: RunStatus, target: RunStatus) -> bool:
    return source in allowed_sources(target)


def holds_conversation(run: RunRecord) -> bool:
    """A queued or running run holds its conversation: a run started on it meanwhile follows its
    `multitaskStrategy`. A run waiting for its client does not (its answer may come much later)."""
    return run.status in (RunStatus.QUEUED, RunStatus.RUNNING)


MAX_QUEUE_CHAIN = 100
"""How far the chain of runs queued behind one another is followed (it is as long as the runs a
conversation queued and then cancelled before they started, while one ran)."""


def run_holding_conversation(run: RunRecord | None, get_run: Callable[[str], RunRecord | None]) -> RunRecord | None:
    """The run that holds the conversation whose latest run is `run`: `run` itself while it is
    queued or running; else, if it was cancelled before it started, the run it was queued behind
    (and so on); else none. (A run that started did so after what it waited for had ended.)"""
    seen: set[str] = set()
    while run is not None and run.run_id not in seen and len(seen) < MAX_QUEUE_CHAIN:
        if holds_conversation(run):
            return run
        if run.started_at is not None or run.after_run_id is None:
            return None
        seen.add(run.run_id)
        run = get_run(run.after_run_id)
    return None
