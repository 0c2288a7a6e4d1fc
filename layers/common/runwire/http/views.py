"""Response bodies of the JSON API (pydantic models, so they document themselves in OpenAPI)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal, overload

from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ..core.models import (
    ApprovalDecision,
    ConversationMessage,
    ConversationSummary,
    EndChunk,
    RequiredAction,
    RunError,
    RunRecord,
    RunRequest,
    RunStatus,
    RunSummary,
    StoredChunk,
    ToolOutput,
    Usage,
    WireModel,
)
from ..core.run_service import RunSnapshot
from ..formats.base import SURFACE_MULTITASK_STRATEGY
from ..formats.runwire_events import end_data


@overload
def iso(timestamp: float) -> str: ...
@overload
def iso(timestamp: float | None) -> str | None: ...
def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


SYNC_WAIT_LIMIT_SECONDS = 25.0
"""API Gateway's HTTP API ends every request at 30 s (StartRunFunction's Timeout is 29)."""


class TwoStepRunRequest(RunRequest):
    """`POST /ai/agent/stream`: a run request, as `POST /v1/runs` takes it, except that fields it does
    not know are ignored (the two-step stream's clients send their own), where the `/v1/` routes
    refuse them. `settings` refuses unknown keys on both: they would be meant for the model. And a
    run on a conversation whose run is still active waits its turn unless it names a strategy: the
    two-step stream's clients send each turn as it comes (a remembered conversation may post its
    second turn right after the first), like the other surfaces' clients."""

    @model_validator(mode="after")
    def _queues_behind_the_conversation(self) -> TwoStepRunRequest:
        if self.conversation_id is not None and self.multitask_strategy is None:
            self.multitask_strategy = SURFACE_MULTITASK_STRATEGY
        return self


class WaitRunRequest(RunRequest):
    """`POST /v1/runs/wait`: a run request, plus how long to wait for the run to finish."""

    wait_seconds: float = Field(default=SYNC_WAIT_LIMIT_SECONDS, ge=0, le=SYNC_WAIT_LIMIT_SECONDS, strict=False)

    def run_request(self) -> RunRequest:
        return RunRequest.model_validate(self.model_dump(exclude={"wait_seconds"}), strict=False)


class StartRunResponse(WireModel):
    stream_id: str
    run_id: str
    status: RunStatus
    stream_url: str
    poll_url: str
    events_url: str


class RunView(WireModel):
    run_id: str
    agent_id: str
    status: RunStatus
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str
    cancel_requested: bool
    output: str
    last_seq: int
    usage: Usage | None
    error: RunError | None
    pending_actions: list[RequiredAction] | None = None
    """While `requires_action`: what the run waits for (answered ones are left out)."""
    action_expires_at: str | None = None
    """While `requires_action`: when the run expires if it is not answered."""
    phase: Literal["working", "recovering"] | None = None
    """While `running`: `working`, or `recovering` when its worker stopped renewing its lease (it
    died or froze) and the run waits for another worker to take it over and carry it on."""
    attempts: int = 0
    """How many workers have claimed the run: one per stretch of work, plus one per take-over."""

    @classmethod
    def of(cls, snapshot: RunSnapshot, now: float | None = None) -> RunView:
        run = snapshot.run
        waiting = run.status is RunStatus.REQUIRES_ACTION
        phase: Literal["working", "recovering"] | None = None
        if run.status is RunStatus.RUNNING:
            phase = "recovering" if run.lease_lapsed(time.time() if now is None else now) else "working"
        return cls(
            run_id=run.run_id,
            agent_id=run.agent_id,
            status=run.status,
            created_at=iso(run.created_at) or "",
            started_at=iso(run.started_at),
            finished_at=iso(run.finished_at),
            expires_at=iso(run.expires_at) or "",
            cancel_requested=run.cancel_requested,
            output=snapshot.output_text,
            last_seq=snapshot.last_seq,
            usage=run.usage,
            error=run.error,
            pending_actions=[a.action for a in run.actions or [] if not a.answered] if waiting else None,
            action_expires_at=iso(run.action_expires_at) if waiting else None,
            phase=phase,
            attempts=run.attempts,
        )


class SubmitToolOutputs(WireModel):
    """`POST /v1/runs/{runId}/tool-outputs`: outputs of the client tools the run waits for."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    tool_outputs: list[ToolOutput] = Field(min_length=1, max_length=64)


class SubmitApprovals(WireModel):
    """`POST /v1/runs/{runId}/approvals`: a person's answers to the run's approval requests."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    approvals: list[ApprovalDecision] = Field(min_length=1, max_length=64)


class EventView(WireModel):
    seq: int
    event: Literal["data", "end"]
    data: dict[str, Any]

    @classmethod
    def of(cls, stored: StoredChunk) -> EventView:
        if isinstance(stored.chunk, EndChunk):
            return cls(seq=stored.seq, event="end", data=end_data(stored.chunk))
        return cls(seq=stored.seq, event="data", data=stored.chunk.model_dump(by_alias=True, mode="json"))


class EventsPage(WireModel):
    run_id: str
    status: RunStatus
    events: list[EventView]
    last_seq: int
    """Pass as `after` on the next poll."""
    done: bool
    """True once the end event has been delivered (in this page, or before `after`): stop polling."""

    @classmethod
    def of(cls, run: RunRecord, chunks: list[StoredChunk], after: int) -> EventsPage:
        return cls(
            run_id=run.run_id,
            status=run.status,
            events=[EventView.of(c) for c in chunks],
            last_seq=chunks[-1].seq if chunks else after,
            done=any(isinstance(c.chunk, EndChunk) for c in chunks) or (run.status.is_terminal and not chunks),
        )


class ConversationMessageView(WireModel):
    role: str
    content: str
    run_id: str
    created_at: str

    @classmethod
    def of(cls, message: ConversationMessage) -> ConversationMessageView:
        return cls(role=message.role, content=message.content, run_id=message.run_id, created_at=iso(message.created_at) or "")


class ConversationMessagesPage(WireModel):
    conversation_id: str
    messages: list[ConversationMessageView]


# --- listings: GET /v1/runs, GET /v1/conversations ------------------------------------------------
class RunSummaryView(WireModel):
    """A run in a listing: `GET /v1/runs/{runId}` has its output and pending actions too."""

    run_id: str
    agent_id: str
    status: RunStatus
    conversation_id: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str
    cancel_requested: bool
    usage: Usage | None
    error: RunError | None

    @classmethod
    def of(cls, summary: RunSummary) -> RunSummaryView:
        return cls(
            run_id=summary.run_id,
            agent_id=summary.agent_id,
            status=summary.status,
            conversation_id=summary.conversation_id,
            created_at=iso(summary.created_at) or "",
            started_at=iso(summary.started_at),
            finished_at=iso(summary.finished_at),
            expires_at=iso(summary.expires_at) or "",
            cancel_requested=summary.cancel_requested,
            usage=summary.usage,
            error=summary.error,
        )


class RunsPage(WireModel):
    runs: list[RunSummaryView]
    next_cursor: str | None
    """Pass as `cursor` (with the same filters) for the next page; null on the last page."""


class ConversationView(WireModel):
    conversation_id: str
    last_message_at: str
    """When the run of its latest stored turn started."""
    last_message: str
    """The start of its latest reply (at most 200 characters)."""
    last_run_id: str
    active_run_id: str | None
    """The run answering in it now (queued, running or waiting for its client), if any."""
    expires_at: str
    """When its messages expire (CONVERSATION_RETENTION_DAYS after its latest turn)."""

    @classmethod
    def of(cls, summary: ConversationSummary) -> ConversationView:
        return cls(
            conversation_id=summary.conversation_id,
            last_message_at=iso(summary.last_message_at) or "",
            last_message=summary.last_message,
            last_run_id=summary.last_run_id,
            active_run_id=summary.active_run_id,
            expires_at=iso(summary.expires_at) or "",
        )


class ConversationsPage(WireModel):
    conversations: list[ConversationView]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""
