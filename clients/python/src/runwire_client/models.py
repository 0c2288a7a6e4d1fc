"""Response bodies of the JSON API, as this package's own pydantic models (camelCase on the wire)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from .chunks import AnyChunk, RequiredAction, WireModel, parse_event


class Usage(WireModel):
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class RunError(WireModel):
    code: str
    message: str = ""


class StartedRun(WireModel):
    """`POST /v1/runs`'s 202: where to read the run."""

    run_id: str
    stream_id: str | None = None
    status: str
    stream_url: str | None = None
    poll_url: str | None = None
    events_url: str | None = None


class Run(WireModel):
    """`GET /v1/runs/{runId}`: the run's state, output so far, usage and what it waits for."""

    run_id: str
    agent_id: str = ""
    status: str
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    expires_at: str | None = None
    cancel_requested: bool = False
    output: str = ""
    last_seq: int = 0
    usage: Usage | None = None
    error: RunError | None = None
    pending_actions: list[RequiredAction] | None = None
    action_expires_at: str | None = None
    phase: str | None = None
    attempts: int = 0

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "expired"})


class RunSummary(WireModel):
    """A run in `GET /v1/runs`: without output or pending actions."""

    run_id: str
    agent_id: str = ""
    status: str
    conversation_id: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    expires_at: str | None = None
    cancel_requested: bool = False
    usage: Usage | None = None
    error: RunError | None = None


class RunsPage(WireModel):
    runs: list[RunSummary]
    next_cursor: str | None = None


class EventsPage(WireModel):
    """`GET /v1/runs/{runId}/events`: the events after `after`, each as a typed chunk with its `seq`."""

    run_id: str
    status: str
    events: list[AnyChunk] = Field(default_factory=list)
    last_seq: int
    done: bool

    @field_validator("events", mode="before")
    @classmethod
    def _typed(cls, events: Any) -> Any:
        if not isinstance(events, list):
            return events
        return [
            parse_event(e.get("event", "data"), e.get("data") or {}, e.get("seq")) if isinstance(e, dict) else e
            for e in events
        ]


class ConversationMessage(WireModel):
    role: str
    content: str
    run_id: str | None = None
    created_at: str | None = None


class ConversationMessages(WireModel):
    conversation_id: str
    messages: list[ConversationMessage]
