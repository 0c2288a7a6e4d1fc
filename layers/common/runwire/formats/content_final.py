"""Seed 003's format (`format=content-final`): text chunks, then one final event with metrics.

    data: {"content": "chunk of text", "is_final": false, "metrics": null}
    data: {"content": "another chunk", "is_final": false, "metrics": null}
    data: {"content": "", "is_final": true, "metrics": {"input_tokens": 50, "output_tokens": 120, "total_tokens": 170, "time_to_first_token_ms": 412, "duration_ms": 2210, "model": "claude-…"}}

Keys in the seed's order, spaced as the seed prints them (Python's `json.dumps` defaults).

Choices the seed leaves open (deliberate divergences):

- The final event's `content` is always "": the last text chunk cannot be known to be the last
  until the run's end chunk arrives, and holding every chunk back to find out would delay it.
  Clients that concatenate `content` of every event (final included) get the full reply either way.
- The seed has no error event. A run that did not succeed still ends with the one final event,
  which then carries an extra key, `"error": {"code", "message"}`: the error chunk's code and
  message for failed or expired runs (or the run's recorded error, or `run_failed`/`run_expired`),
  `{"code": "cancelled", …}` for cancelled ones. A succeeded run's final event has no `error` key,
  so it is byte-for-byte the seed's shape.
- Tool calls and results are not shown: the seed's stream is text only.
- `metrics`: tokens and `model` from the run's usage (null when no model was called);
  `time_to_first_token_ms` = first text chunk's `written_at` − the run's `created_at`, and
  `duration_ms` = the end chunk's `written_at` − `created_at`, in whole milliseconds (0 at least,
  as the two clocks are different Lambdas'). `time_to_first_token_ms` is null when the run wrote no
  text, and on a resumed stream, which cannot know whether text came before the resume point.
- Headers: the seed's `Cache-Control: no-cache` and `Connection: keep-alive`. `Connection` is a
  hop-by-hop header: HTTP/2 forbids it, and proxies and Lambda's streaming front door drop it, so
  a client must not depend on it.

Resuming (`StreamContext.resumed_after > 0`): the stream continues with the text after the
resume point and the same final event, which is what a client concatenating `content` can use.

Runs that wait for their client (`clientMcpTools`, `approvalRequired`): this format has no tool
events, so a waiting run shows nothing new; the stream stays open with keep-alive comment lines
until the client answers (`POST /v1/runs/{runId}/tool-outputs` or `/approvals`, the run id in the
`X-Run-Id` header) and then carries on with the answer's text and the final event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from ..core.models import (
    IDENTIFIER_PATTERN,
    ClientTool,
    EndChunk,
    RunRequest,
    RunStatus,
    StoredChunk,
    TextChunk,
    ToolName,
)
from ..errors import InvalidRequestError
from .base import SURFACE_MULTITASK_STRATEGY, RunTally, StreamContext
from .sse import PING, ServerSentEvent


# --- the requests: POST /chat/stream (without agent_id) and POST /chat/run -----------------------
class ContentChatRequest(BaseModel):
    """The content/is_final surface's body, for both `/chat/stream` and `/chat/run`."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)

    message: Annotated[StrictStr, Field(min_length=1, max_length=100_000)]
    conversation_id: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)] | None = None
    """Absent: a new conversation is created (see `to_run_request`)."""
    client_mcp_tools: list[ClientTool] | None = Field(default=None, max_length=64, alias="clientMcpTools")
    """runwire's extension (as on `POST /v1/runs`): tools the client runs; the stream stays open
    while the run waits for their output (`POST /v1/runs/{runId}/tool-outputs`, run id in `X-Run-Id`)."""
    approval_required: list[ToolName] | None = Field(default=None, max_length=64, alias="approvalRequired")


class ChatRunResponse(BaseModel):
    """`POST /chat/run`'s answer: the full reply and the conversation it belongs to."""

    model_config = ConfigDict(strict=True)

    response: str
    conversation_id: str


def to_run_request(body: ContentChatRequest, *, new_conversation_id: Callable[[], str]) -> RunRequest:
    """The run for one chat turn with the default agent; a new conversation when none is given."""
    try:
        return RunRequest(
            task=body.message,
            agent_role="chat",
            conversation_id=body.conversation_id or new_conversation_id(),
            multitask_strategy=SURFACE_MULTITASK_STRATEGY,
            client_mcp_tools=body.client_mcp_tools,
            approval_required=body.approval_required,
        )
    except ValidationError as exc:
        # e.g. a blank message: the client's fault, so a 400, not a 500.
        raise InvalidRequestError(f"message: {exc.errors()[0].get('msg', 'is invalid')}") from None


# --- the stream -----------------------------------------------------------------------------------
class Metrics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    time_to_first_token_ms: int | None
    duration_ms: int | None
    model: str | None


class FinalError(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    message: str


class ContentEvent(BaseModel):
    """Every event of this format; only the final one has `metrics`, and `error` if it failed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    content: str
    is_final: bool
    metrics: Metrics | None = None
    error: FinalError | None = None

    def encode(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"error"} if self.error is None else None)
        return ServerSentEvent(data=json.dumps(body, ensure_ascii=False)).encode()


FALLBACK_ERRORS = {
    RunStatus.FAILED: FinalError(code="run_failed", message="The run failed."),
    RunStatus.EXPIRED: FinalError(code="run_expired", message="The run did not finish in time."),
    RunStatus.CANCELLED: FinalError(code="cancelled", message="The run was cancelled."),
}


def elapsed_ms(since: float, until: float) -> int:
    return max(0, round((until - since) * 1000))


class ContentFinalEncoder:
    def __init__(self, context: StreamContext) -> None:
        self._context = context
        self._resumed = context.resumed_after > 0
        self._first_text_at: float | None = None
        self._tally = RunTally(context.run)
        self._finished = False

    def open(self) -> bytes:
        return b""

    def encode(self, stored: StoredChunk) -> bytes:
        if self._finished:
            return b""
        chunk = stored.chunk
        if isinstance(chunk, TextChunk):
            if self._first_text_at is None:
                self._first_text_at = stored.written_at
            return ContentEvent(content=chunk.text, is_final=False).encode()
        self._tally.observe(chunk)
        if isinstance(chunk, EndChunk):
            self._finished = True
            metrics = self._metrics(ended_at=stored.written_at)
            error = self._final_error(chunk.status)
            return ContentEvent(content="", is_final=True, metrics=metrics, error=error).encode()
        return b""

    def ping(self) -> bytes:
        return PING

    def recovering(self) -> bytes:
        return PING  # the format has no event for it

    @property
    def finished(self) -> bool:
        return self._finished

    def _metrics(self, ended_at: float) -> Metrics:
        created_at = self._context.run.created_at
        usage = self._tally.usage
        first_token_ms = None
        if self._first_text_at is not None and not self._resumed:
            first_token_ms = elapsed_ms(created_at, self._first_text_at)
        return Metrics(
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            total_tokens=usage.input_tokens + usage.output_tokens if usage else None,
            time_to_first_token_ms=first_token_ms,
            duration_ms=elapsed_ms(created_at, ended_at),
            model=usage.model if usage else None,
        )

    def _final_error(self, status: RunStatus) -> FinalError | None:
        if status not in FALLBACK_ERRORS:
            return None
        error = self._tally.error
        if status is not RunStatus.CANCELLED and error is not None:
            return FinalError(code=error.code, message=error.message)
        return FALLBACK_ERRORS[status]


class ContentFinalFormat:
    name = "content-final"
    media_type = "text/event-stream"

    def headers(self, context: StreamContext) -> dict[str, str]:
        return {"Cache-Control": "no-cache", "Connection": "keep-alive"}

    def encoder(self, context: StreamContext) -> ContentFinalEncoder:
        return ContentFinalEncoder(context)


CONTENT_FINAL = ContentFinalFormat()
