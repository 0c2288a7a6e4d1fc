"""How a run stops: `finish` (its one terminal sequence) or `suspend` (it waits for its client).

Each is one atomic store write, so a reader never sees half of either:

    finish:   [held step_end] → [error] → [usage] → end          + the terminal status
    suspend:  [held step_end] → requires_action                   + status requires_action, actions

A run that waits has no worker, so whoever ends it — a cancel, a reader or the sweep that finds
its action deadline passed — writes the terminal sequence after the last seq the suspend recorded
(`RunRecord.last_seq`), conditional on the run still waiting: only one of them can win.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .models import (
    ApprovalAction,
    Chunk,
    ClientToolAction,
    ErrorChunk,
    PendingAction,
    RequiredAction,
    RequiresActionChunk,
    RunError,
    RunRecord,
    RunStatus,
    Usage,
    UsageChunk,
)
from .ports import RunStore
from .transcript import TokenUsage, ToolCallBlock

ACTION_TIMED_OUT = RunError(
    code="action_timed_out", message="The run waited for its client's answer longer than it may, and has expired."
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def input_hash(tool_input: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(tool_input).encode()).hexdigest()


def approval_id(run_id: str, tool_call_id: str, tool_input: dict[str, Any]) -> str:
    """Issued by the server, bound to the run, the tool call and its input: an id from another run,
    another call or another input can never match."""
    digest = hashlib.sha256(f"{run_id}\n{tool_call_id}\n{input_hash(tool_input)}".encode()).hexdigest()
    return "apr_" + digest[:32]


def pending_action(run_id: str, call: ToolCallBlock) -> PendingAction:
    action: RequiredAction
    if call.executor == "client":
        action = ClientToolAction(tool_call_id=call.id, name=call.name, input=call.input)
    else:
        action = ApprovalAction(
            approval_id=approval_id(run_id, call.id, call.input), tool_call_id=call.id, name=call.name, input=call.input
        )
    return PendingAction(action=action, input_hash=input_hash(call.input))


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def usage_of(total: TokenUsage | None) -> Usage | None:
    if total is None:
        return None
    return Usage(model=total.model, input_tokens=total.input_tokens, output_tokens=total.output_tokens)


def terminal_chunks(error: RunError | None, usage: Usage | None) -> list[Chunk]:
    """What precedes the end chunk: [error] → [usage]."""
    chunks: list[Chunk] = []
    if error is not None:
        chunks.append(ErrorChunk(code=error.code, message=error.message))
    if usage is not None:
        chunks.append(UsageChunk(model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens))
    return chunks


def retained_until(finished_at: float, retention_seconds: float | None) -> int | None:
    """A finished run stays readable for its retention, counted from its end."""
    return None if retention_seconds is None else int(finished_at + retention_seconds)


@dataclass(frozen=True)
class Ending:
    """The one place a worker's run stops, on the writer's thread."""

    store: RunStore
    retention_seconds: float | None = None

    def finish(
        self, run: RunRecord, *, next_seq: int, held: Sequence[Chunk], status: RunStatus,
        error: RunError | None, usage: Usage | None, now: float, owner: str | None = None,
    ) -> RunRecord:
        """`owner`: the claim that must still hold the run (LeaseLostError otherwise)."""
        return self.store.finish(
            run.org_id, run.run_id, status,
            expected=RunStatus.RUNNING, end_seq=next_seq, finished_at=now, usage=usage, error=error,
            preceding=[*held, *terminal_chunks(error, usage)], retain_until=retained_until(now, self.retention_seconds),
            owner=owner,
        )

    def suspend(
        self, run: RunRecord, *, next_seq: int, held: Sequence[Chunk], actions: list[PendingAction],
        usage: Usage | None, action_expires_at: float, expires_at: int, owner: str | None = None,
    ) -> RunRecord:
        # The earlier chunks were written to live as long as one stretch of work: keep them as long
        # as the run now lives, so a run that waits stays whole until its retention ends. First:
        # should this fail, the run is not left waiting on a log that will expire under it.
        self.store.extend_chunks(run.org_id, run.run_id, through_seq=next_seq - 1, expires_at=expires_at)
        required = RequiresActionChunk(actions=[a.action for a in actions], expires_at=iso(action_expires_at))
        return self.store.suspend(
            run.org_id, run.run_id, first_seq=next_seq, chunks=[*held, required], actions=actions,
            action_expires_at=action_expires_at, usage=usage, expires_at=expires_at, owner=owner,
        )


def end_stopped_run(
    store: RunStore, run: RunRecord, status: RunStatus, error: RunError | None, now: float,
    *, retention_seconds: float | None = None,
) -> RunRecord:
    """End a run that no worker holds (queued, or waiting for its client) with its terminal sequence,
    after its last recorded chunk; ConditionFailedError if it moved on meanwhile."""
    return store.finish(
        run.org_id, run.run_id, status,
        expected=run.status, end_seq=run.last_seq + 1, finished_at=now, usage=run.usage, error=error,
        preceding=terminal_chunks(error, run.usage), retain_until=retained_until(now, retention_seconds),
    )


def is_overdue(run: RunRecord, now: float) -> bool:
    return run.status is RunStatus.REQUIRES_ACTION and run.action_expires_at is not None and now >= run.action_expires_at
