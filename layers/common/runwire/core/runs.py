"""The run state machine: every allowed transition, in one table.

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled | expired
      │
      └──cancel (before a worker claims it)──▶ cancelled

The stores enforce this table with conditional writes (`status IN (:allowed_from)`), so two
workers, or a worker and a cancel, can never both win.
"""

from __future__ import annotations

from .models import RunStatus

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.RUNNING: frozenset({RunStatus.QUEUED}),
    RunStatus.SUCCEEDED: frozenset({RunStatus.RUNNING}),
    RunStatus.FAILED: frozenset({RunStatus.RUNNING, RunStatus.QUEUED}),
    RunStatus.CANCELLED: frozenset({RunStatus.RUNNING, RunStatus.QUEUED}),
    RunStatus.EXPIRED: frozenset({RunStatus.RUNNING, RunStatus.QUEUED}),
}


def allowed_sources(target: RunStatus) -> frozenset[RunStatus]:
    """The statuses a run may be in for a move to `target`."""
    return TRANSITIONS.get(target, frozenset())


def can_transition(source: RunStatus, target: RunStatus) -> bool:
    return source in allowed_sources(target)
