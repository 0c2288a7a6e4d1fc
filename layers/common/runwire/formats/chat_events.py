"""Seed 002's format (`format=chat-events`): one typed JSON object per `data:` line.

    data: {"type": "text", "content": "Machine learning is"}
    data: {"type": "tool_call", "name": "web_search", "args": {"query": "ML applications 2026"}}
    data: {"type": "tool_result", "name": "web_search", "result": "..."}
    data: {"type": "done", "usage": {"input_tokens": 50, "output_tokens": 120, "total_tokens": 170}}

Keys in the seed's order, spaced as the seed prints them (Python's `json.dumps` defaults), one
event per line: the seed's own JavaScript client splits each network read on "\\n" and parses
lines that start with `data: `, so an event never spans lines, and the keep-alive is a `:` comment
line that such a client skips.

Choices the seed leaves open (deliberate, and the only divergences):

- Exactly one terminal event, decided by the run's end status: `done` (succeeded, cancelled) or
  `error` (failed, expired). `done` never follows `error`: the seed defines `done` as "Stream
  complete", and a client that stops on `done` would take a failed run for an answer. The error
  chunk is therefore held until the end chunk, and its `message` is the error's message (or, for
  a run that ended without one, the run's recorded error or a generic sentence). A failed run's
  token usage is not on this wire; it is on the run (`GET /v1/runs/{id}`).
- `done.usage` is all zeros when no model was called (a run cancelled before it started).
- `tool_result.result` is the tool's output as a JSON value (the seed's example shows a string
  because that tool returned one); `args` is the tool input object.
- `tool_result.name` comes from the earlier `tool_call` with the same id. On a resumed stream
  (`StreamContext.resumed_after > 0`) that call may lie before the resume point; the name is then
  `null`, not a guess (no tool can be named `null`, while `"unknown"` could be a real name).

Runs that wait for their client: a client tool's call (`clientMcpTools`) is a `tool_call` event like
any other. While the run waits for its output or for an approval (`requires_action`, answered at
`POST /v1/runs/{runId}/tool-outputs` or `/approvals`; the run id is in the `X-Run-Id` header), the
stream stays open with keep-alive comment lines and then carries on with the `tool_result` and the
rest of the answer. A denied call's `tool_result.result` is `{"denied": true, "reason": …}`. The
`requires_action` and `step_end` chunks have no event here.

Resuming: the stream simply continues with the events after the resume point, which is all a
seed-002 client (it concatenates `text` contents) can use.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from ..core.agents import AgentCatalog
from ..core.models import (
    IDENTIFIER_PATTERN,
    ClientTool,
    EndChunk,
    RunRequest,
    RunStatus,
    StoredChunk,
    TextChunk,
    ToolName,
    ToolResultChunk,
    ToolUseChunk,
)
from ..errors import InvalidRequestError
from .base import SURFACE_MULTITASK_STRATEGY, RunTally, StreamContext
from .sse import PING, ServerSentEvent

# --- the request: POST /chat/stream (with agent_id) ----------------------------------------------
AGENT_ID_PATTERN = r"^ag_[A-Za-z0-9_-]{1,64}$"


class AgentChatRequest(BaseModel):
    """The chat events surface's body: a message to a named agent (`agent_id`)."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)

    agent_id: Annotated[str, Field(pattern=AGENT_ID_PATTERN)]
    message: Annotated[StrictStr, Field(min_length=1, max_length=100_000)]
    session_id: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)] | None = None
    """Conversation memory: runs with the same session id share history."""
    client_mcp_tools: list[ClientTool] | None = Field(default=None, max_length=64, alias="clientMcpTools")
    """runwire's extension (as on `POST /v1/runs`): tools the client runs; the stream stays open
    while the run waits for their output (`POST /v1/runs/{runId}/tool-outputs`, run id in `X-Run-Id`)."""
    approval_required: list[ToolName] | None = Field(default=None, max_length=64, alias="approvalRequired")


def to_run_request(body: AgentChatRequest, catalog: AgentCatalog) -> RunRequest:
    """The run for one message. An unknown `agent_id` raises `UnknownAgentError` (a 404 here)."""
    agent = catalog.by_id(body.agent_id)
    try:
        return RunRequest(
            task=body.message, agent_role=agent.role, conversation_id=body.session_id,
            multitask_strategy=SURFACE_MULTITASK_STRATEGY if body.session_id else None,
            client_mcp_tools=body.client_mcp_tools, approval_required=body.approval_required,
        )
    except ValidationError as exc:
        # e.g. a blank message: the client's fault, so a 400, not a 500.
        raise InvalidRequestError(f"message: {exc.errors()[0].get('msg', 'is invalid')}") from None


# --- the stream -----------------------------------------------------------------------------------
class ChatEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def encode(self) -> bytes:
        return ServerSentEvent(data=json.dumps(self.model_dump(mode="json"), ensure_ascii=False)).encode()


class TextEvent(ChatEvent):
    type: Literal["text"] = "text"
    content: str


class ToolCallEvent(ChatEvent):
    type: Literal["tool_call"] = "tool_call"
    name: str
    args: dict[str, Any]


class ToolResultEvent(ChatEvent):
    type: Literal["tool_result"] = "tool_result"
    name: str | None
    result: Any


class TokenUsage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int
    output_tokens: int
    total_tokens: int


class DoneEvent(ChatEvent):
    type: Literal["done"] = "done"
    usage: TokenUsage


class ErrorEvent(ChatEvent):
    type: Literal["error"] = "error"
    message: str


ChatStreamEvent = Annotated[
    TextEvent | ToolCallEvent | ToolResultEvent | DoneEvent | ErrorEvent, Field(discriminator="type")
]
"""Every event this format sends: a decoder for tests and Python clients."""

FALLBACK_ERROR_MESSAGE = {
    RunStatus.FAILED: "The run failed.",
    RunStatus.EXPIRED: "The run did not finish in time.",
}
FAILED_STATUSES = frozenset(FALLBACK_ERROR_MESSAGE)


class ChatEventsEncoder:
    def __init__(self, context: StreamContext) -> None:
        self._context = context
        self._tool_names: dict[str, str] = {}
        self._tally = RunTally(context.run)
        self._finished = False

    def open(self) -> bytes:
        return b""

    def encode(self, stored: StoredChunk) -> bytes:
        if self._finished:
            return b""
        chunk = stored.chunk
        if isinstance(chunk, TextChunk):
            return TextEvent(content=chunk.text).encode()
        if isinstance(chunk, ToolUseChunk):
            self._tool_names[chunk.id] = chunk.name
            return ToolCallEvent(name=chunk.name, args=chunk.input).encode()
        if isinstance(chunk, ToolResultChunk):
            return ToolResultEvent(name=self._tool_names.get(chunk.id), result=chunk.output).encode()
        self._tally.observe(chunk)  # usage and error are shown by the end chunk: `done` or `error`
        if isinstance(chunk, EndChunk):
            self._finished = True
            return self._terminal(chunk.status).encode()
        return b""

    def ping(self) -> bytes:
        return PING

    def recovering(self) -> bytes:
        return PING  # the format has no event for it

    @property
    def finished(self) -> bool:
        return self._finished

    def _terminal(self, status: RunStatus) -> ChatEvent:
        if status in FAILED_STATUSES:
            error = self._tally.error
            return ErrorEvent(message=error.message if error else FALLBACK_ERROR_MESSAGE[status])
        usage = self._tally.usage
        if usage is None:
            return DoneEvent(usage=TokenUsage(input_tokens=0, output_tokens=0, total_tokens=0))
        return DoneEvent(
            usage=TokenUsage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.input_tokens + usage.output_tokens,
            )
        )


class ChatEventsFormat:
    name = "chat-events"
    media_type = "text/event-stream"

    def headers(self, context: StreamContext) -> dict[str, str]:
        return {}

    def encoder(self, context: StreamContext) -> ChatEventsEncoder:
        return ChatEventsEncoder(context)


CHAT_EVENTS = ChatEventsFormat()
