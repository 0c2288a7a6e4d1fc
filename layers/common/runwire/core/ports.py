"""Ports: what the core needs from the outside world, as `typing.Protocol`s.

Adapters live in `runwire.adapters` (DynamoDB, SQS, Anthropic, in-memory fakes). The in-memory
fakes pass the same contract tests as the real adapters (tests/contract).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .models import (
    Chunk,
    ConversationMessage,
    ConversationSummary,
    Lease,
    ListPage,
    PendingAction,
    RunError,
    RunMessage,
    RunRecord,
    RunStatus,
    RunSummary,
    StoredChunk,
    Usage,
)
from .transcript import Message


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch."""


class RunStore(Protocol):
    """Runs and their numbered chunks. Every write that matters is conditional."""

    def create_run(self, run: RunRecord) -> None:
        """Store a new run; ConditionFailedError if another run has the id (the same run again, as a
        retry of a write that committed, is written once)."""

    def delete_run(self, org_id: str, run_id: str) -> None:
        """Remove a run that was never enqueued (compensation for a failed enqueue)."""

    def get_run(self, org_id: str, run_id: str) -> RunRecord | None:
        """The run, or None when it does not exist or has expired."""

    def transition(
        self, org_id: str, run_id: str, target: RunStatus, *, changes: dict[str, Any] | None = None
    ) -> RunRecord:
        """Move the run to `target` if the state machine allows it from its current status;
        ConditionFailedError otherwise. `changes` sets other attributes in the same write."""

    def request_cancel(self, org_id: str, run_id: str) -> RunRecord:
        """Flag a queued or running run for cancellation; ConditionFailedError if it is finished."""

    def claim(self, org_id: str, run_id: str, *, lease: Lease, now: float, expires_at: int) -> RunRecord:
        """queued → running under `lease` (a fresh claim: the stretch's take-overs start at 0);
        ConditionFailedError if the run is not queued."""

    def take_over(self, org_id: str, run_id: str, *, lease: Lease, previous_owner: str | None, now: float) -> RunRecord:
        """running → running under a new `lease`, only if the lease of `previous_owner` lapsed before
        `now`; ConditionFailedError otherwise (its worker renewed it, or another took it first)."""

    def renew_lease(self, org_id: str, run_id: str, *, lease: Lease, live_usage: Usage | None) -> tuple[RunStatus, bool]:
        """Extend the holder's lease and record its usage so far, in one conditional write that also
        answers (status, cancel requested); LeaseLostError if `lease.owner` no longer holds the run."""

    def append_chunk(
        self, org_id: str, run_id: str, seq: int, chunk: Chunk, *, expires_at: int, owner: str | None = None
    ) -> StoredChunk:
        """Write chunk `seq`; ConditionFailedError if that seq is written already. With `owner`, only
        while that lease holds the running run (fencing: a superseded worker's write is refused)."""

    def finish(
        self,
        org_id: str,
        run_id: str,
        target: RunStatus,
        *,
        expected: RunStatus,
        end_seq: int,
        finished_at: float,
        usage: Usage | None,
        error: RunError | None,
        preceding: Sequence[Chunk] = (),
        retain_until: int | None = None,
        owner: str | None = None,
    ) -> RunRecord:
        """Atomically write `preceding` (e.g. error, usage) from `end_seq` on, then the end chunk,
        and move the run from `expected` to the terminal `target`; ConditionFailedError if the run
        is not `expected` or a seq is taken (or, with `owner`, that lease no longer holds it).
        Nothing is written unless all of it is. `retain_until`: the run's new expiry (its retention
        counts from its end)."""

    def suspend(
        self,
        org_id: str,
        run_id: str,
        *,
        first_seq: int,
        chunks: Sequence[Chunk],
        actions: list[PendingAction],
        action_expires_at: float,
        usage: Usage | None,
        expires_at: int,
        owner: str | None = None,
    ) -> RunRecord:
        """Atomically write `chunks` (ending with the requires_action chunk) from `first_seq` on and
        move the run from running to requires_action with its pending actions; ConditionFailedError
        if the run is not running, a seq is taken, or (with `owner`) that lease no longer holds it."""

    def record_answers(self, run: RunRecord, actions: list[PendingAction], *, requeue: bool) -> RunRecord:
        """Replace the waiting run's actions with `actions` (answers added) if they are still what
        `run` holds and the run is still requires_action; with `requeue`, also move it to queued.
        ConditionFailedError if another answer or a cancel got there first."""

    def cancel_state(self, org_id: str, run_id: str) -> tuple[RunStatus, bool] | None:
        """Only the status and the cancel flag (a projection: the worker asks twice a second)."""

    def extend_chunks(self, org_id: str, run_id: str, *, through_seq: int, expires_at: int) -> None:
        """Keep chunks 1..through_seq until `expires_at` (a run that waits outlives its first chunks' TTL)."""

    def overdue_waiting_runs(self, *, now: float, limit: int, since: float = 0.0) -> list[tuple[str, str]]:
        """(org, run) of runs in requires_action whose action deadline passed between `since` and
        `now`, oldest deadline first."""

    def lapsed_leases(self, *, before: float, since: float, limit: int) -> list[tuple[str, str]]:
        """(org, run) of running runs whose lease expired between `since` and `before`, oldest first
        (their workers died, and no other took them over)."""

    def read_chunks(
        self, org_id: str, run_id: str, *, after: int, limit: int = 1000, consistent: bool = False
    ) -> list[StoredChunk]:
        """Chunks with seq > after, in order, contiguous (stops at the first gap), at most `limit`.
        `consistent`: a strongly consistent read, for reads that follow a terminal status."""


class ConversationStore(Protocol):
    """Server-side conversation memory, per org, and each conversation's active run."""

    def recent_messages(self, org_id: str, conversation_id: str, *, limit: int) -> list[ConversationMessage]:
        """The last `limit` messages, oldest first."""

    def append_turn(
        self, org_id: str, conversation_id: str, *, run_id: str, at: float, user: str, assistant: str
    ) -> None:
        """Persist one turn (the user's message and the assistant's reply). Idempotent per run."""

    def active_run(self, org_id: str, conversation_id: str) -> str | None:
        """The conversation's latest run id, or None."""

    def replace_active_run(
        self, org_id: str, conversation_id: str, run_id: str, *, expected: str | None, expires_at: int
    ) -> None:
        """Remember the run now answering in this conversation (for stream resume and double-texting),
        only if the conversation still points at `expected` (None: at no live run); else
        ConditionFailedError. What lets two starts on one conversation not both find it free."""


class RunIndex(Protocol):
    """The org's runs, newest first (a secondary index of the run store)."""

    def list_runs(
        self, org_id: str, *, limit: int, after: str | None = None, status: RunStatus | None = None,
        conversation_id: str | None = None,
    ) -> ListPage[RunSummary]:
        """Live runs of the org, newest first, those past the position `after` (a previous page's
        `next_position`); only those with `status` and in `conversation_id` when given. A page holds
        `limit` runs whenever that many match; `next_position` is None when no more do.
        InvalidCursorError if `after` is not a position of this listing."""


class ConversationIndex(Protocol):
    """The org's conversations, most recent turn first, and their deletion."""

    def list_conversations(self, org_id: str, *, limit: int, after: str | None = None) -> ListPage[ConversationSummary]:
        """Live conversations of the org (those with a stored turn), the latest turn first, paged as
        `RunIndex.list_runs` is."""

    def delete_conversation(self, org_id: str, conversation_id: str, *, expected_active: str | None) -> bool:
        """Delete its messages, its listing entry and its active-run pointer; False when it had none
        that had not expired (nothing to delete). The pointer goes first, and only if it still names
        `expected_active` (None: no live run), else ConditionFailedError: a run started on the
        conversation since it was checked keeps it."""


class RunQueue(Protocol):
    def enqueue(self, message: RunMessage, *, delay_seconds: int = 0) -> None:
        """Hand the run to the workers (after `delay_seconds`, at most 900); QueueUnavailableError
        when that fails."""


class Delivery(Protocol):
    """The queue message a worker is running: kept invisible to other workers while it works, so
    that if this worker dies, the message reappears soon and another worker takes the run over."""

    def keep_invisible(self, seconds: int) -> None:
        """Hide the message from other workers for `seconds` from now (best effort: never raises)."""


# --- the model provider port --------------------------------------------------------------------
@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ModelRequest:
    model: str
    system: str
    messages: list[Message]
    """The neutral transcript; each provider translates it to its own wire shape."""
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int = 4096
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallRequested:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class UsageUpdated:
    """Token counts for the current model call so far (not cumulative across calls)."""

    model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class TurnEnded:
    stop_reason: str
    content: list[dict[str, Any]] = field(default_factory=list)
    """The provider's own content blocks, for diagnostics; the transcript is built from the events."""


ModelEvent = TextDelta | ToolCallRequested | UsageUpdated | TurnEnded


class Cancellation(Protocol):
    @property
    def cancelled(self) -> bool: ...

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True at once if cancelled meanwhile."""

    def on_cancel(self, callback: Any) -> None:
        """Run `callback` when cancelled (at once if cancelled already): closes a blocked stream."""


class ModelProvider(Protocol):
    name: str

    def stream(self, request: ModelRequest, cancellation: Cancellation) -> Iterator[ModelEvent]:
        """One model call. Yields deltas, tool calls and usage, ends with TurnEnded;
        raises ModelError subclasses on failure."""
