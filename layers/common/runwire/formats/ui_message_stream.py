"""Seed 001's format (`format=ui-message-stream`): the Vercel AI SDK UI message stream, protocol v1.

Validated against the npm `ai` package 7.0.173 (the registry's latest) and 6.0.322 (the version
`tests/js` installs): `src/ui-message-stream/ui-message-chunks.ts` (the chunk schema),
`json-to-sse-transform-stream.ts` (the framing), `ui-message-stream-headers.ts` (the headers) and
`src/ui/process-ui-message-stream.ts` (the consumer that enforces ordering); and by feeding the
renderings in `tests/unit/test_wire_formats.py` through both versions' `AbstractChat` (over
`DefaultChatTransport`'s parser) and `readUIMessageStream`, including a dropped connection resumed
with a continuation. A run renders as

    data: {"type":"start","messageId":"msg_…","messageMetadata":{"runId":"run_…"}}
    data: {"type":"start-step"}
    data: {"type":"text-start","id":"txt_1"}
    data: {"type":"text-delta","id":"txt_1","delta":"Let me check."}
    data: {"type":"text-end","id":"txt_1"}
    data: {"type":"tool-input-available","toolCallId":"t1","toolName":"calculator","input":{…}}
    data: {"type":"tool-output-available","toolCallId":"t1","output":{…}}
    data: {"type":"finish-step"}
    data: {"type":"start-step"}
    data: {"type":"text-start","id":"txt_4"}
    …
    data: {"type":"finish-step"}
    data: {"type":"finish","finishReason":"stop","messageMetadata":{"usage":{…},"status":"succeeded"}}
    data: [DONE]

(each event followed by a blank line). Facts of the protocol this module relies on:

- Framing is `data: <JSON.stringify(chunk)>\\n\\n`, ending with `data: [DONE]\\n\\n`. The client
  (`parseJsonEventStream` over `eventsource-parser`) reads only each event's `data`: `id:` and
  `event:` lines and `:` comments (our keep-alive ping) are ignored, and `[DONE]` is skipped.
  We send no `id:` lines, so the bytes are the SDK's own; the seq is not on this wire.
- `text-delta`/`text-end` throw in the client unless a `text-start` with the same id is active.
  Text part ids are `txt_<seq of the block's first text chunk>`: unique in the message and the
  same on every replay. A block is closed (`text-end`) before any tool part, error or finish.
- `tool-output-available` throws unless the message already holds a tool part with that id.
- A step is one model call: tool results end one, so the next text or tool call opens another
  (`finish-step`, `start-step`), as `streamText` does.
- `error` is what `useChat` treats as the end: the chat's processor rethrows it, the chat goes
  to status `error` with `errorText` as the message, and it reads nothing further. The SDK's own
  server still follows a model error with `finish-step` and `finish` (`finishReason: "error"`),
  and so do we: `readUIMessageStream` and other non-throwing readers get the usage and the
  reason, and transports that treat a stream without `finish` as interrupted do not reconnect.

Choices where a run has no counterpart in the protocol (deliberate divergences from seed 001):

- The terminal event is always exactly one `finish`, then `data: [DONE]`. `finishReason` is
  `stop` (succeeded), `error` (failed, expired) or `other` (cancelled), values both SDK versions
  accept (7.x added `interrupted`, which 6.x rejects). `messageMetadata` is
  `{"usage": {"model", "inputTokens", "outputTokens", "totalTokens"}, "status": <run status>}`,
  `usage` left out when no model was called. `start` carries `{"runId"}` so a client can cancel or
  re-attach; the client merges both into the message's `metadata`.
- A failed or expired run always shows an `error` before its finish: the error chunk's message,
  or for a run that ended without one, the run's recorded error or a generic sentence.
- A cancelled run sends no `abort` chunk: the SDK sends `abort` only when its own server stops,
  and then omits `finish`; the cancel shows as `finishReason: "other"` and status `cancelled`.
- Seed 001 reports usage per step ("step-finish usage telemetry"); a run's stored usage is
  per run, so it is reported once, on `finish`.
- Tool results for a call this stream never showed are dropped on a stream read from the start
  (the worker never writes one; the client would fail the whole message on it).

Resuming (`StreamContext.resumed_after > 0`): the stream is a continuation of a response the
client already holds, which is what the SDK calls a non-replay resume. It sends no `start` and no
`start-step`: per the SDK's resume docs, a continuation without `start` keeps the client's
in-progress message under either `resumeStreamIsReplay` setting. Text opens a new text part
(the client's open part, if any, keeps the text it had and stays `streaming`: its id is not known
here). Tool results are sent even for calls made before the resume point, since the client holds
those calls; a client that reloaded and holds nothing should re-read from the start instead
(`after=0`, a full replay, which is what `DefaultChatTransport` expects by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ..core.models import (
    EndChunk,
    ErrorChunk,
    HistoryMessage,
    RunRequest,
    RunStatus,
    StoredChunk,
    TextChunk,
    ToolResultChunk,
    ToolUseChunk,
    UsageChunk,
)
from ..errors import InvalidRequestError
from .base import RunTally, StreamContext
from .sse import PING, ServerSentEvent

# --- the request: POST /api/agent/chat/stream ----------------------------------------------------
UUID_PATTERN = (
    r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
    r"|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$"
)
"""Seed 001's `conversationId` pattern, verbatim."""

HISTORY_LIMIT = 200
"""`RunRequest.conversation_history` holds at most 200 messages; older turns are dropped."""


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="ignore")


class TextUIPart(_CamelModel):
    type: Literal["text"]
    text: StrictStr


class OtherUIPart(_CamelModel):
    """Any part that is not text (files, tool calls, reasoning, step-start…): accepted, not used."""

    model_config = ConfigDict(strict=True, extra="allow")

    type: StrictStr


def _ui_part_kind(value: Any) -> str:
    return "text" if isinstance(value, dict) and value.get("type") == "text" else "other"


UIPart = Annotated[
    Annotated[TextUIPart, Tag("text")] | Annotated[OtherUIPart, Tag("other")],
    Discriminator(_ui_part_kind),
]


class UIMessage(_CamelModel):
    """An AI SDK `UIMessage` as `DefaultChatTransport` posts it."""

    id: StrictStr
    role: Literal["user", "assistant", "system"]
    parts: list[UIPart]
    metadata: Any = None

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, TextUIPart))


class ApprovalResponse(_CamelModel):
    tool_call_id: StrictStr
    approved: StrictBool


class UIChatStreamRequest(_CamelModel):
    """Seed 001's body. The transport also sends `id`, `trigger` and `messageId`: ignored."""

    messages: list[UIMessage] = Field(min_length=1)
    conversation_id: Annotated[str, Field(pattern=UUID_PATTERN)] | None = None
    current_page: Annotated[str, Field(max_length=2048)] | None = None
    approval_response: ApprovalResponse | None = None
    """Accepted and validated; acted on by the tool-approval issue."""
    on_disconnect: Literal["cancel", "continue"] = "cancel"
    """What the route does with the run when the client goes away mid-stream."""

    @model_validator(mode="after")
    def _ends_with_a_user_turn(self) -> UIChatStreamRequest:
        last = self.messages[-1]
        if last.role != "user" or not last.text.strip():
            raise ValueError("the last message must be a user message with text")
        return self


def to_run_request(body: UIChatStreamRequest, *, new_conversation_id: Callable[[], str]) -> RunRequest:
    """The run for one chat turn.

    The AI SDK posts the whole conversation every turn, so the earlier messages become
    `conversationHistory` and replace the history the worker would load for the conversation.
    """
    *earlier, last = body.messages
    history = [
        HistoryMessage(role=message.role, content=message.text)
        for message in earlier
        if message.role in ("user", "assistant") and message.text
    ]
    try:
        return RunRequest(
            task=last.text,
            agent_role="chat",
            conversation_history=history[-HISTORY_LIMIT:],
            conversation_id=body.conversation_id or new_conversation_id(),
            context={"currentPage": body.current_page} if body.current_page is not None else None,
        )
    except ValidationError as exc:
        # e.g. a task over RunRequest's length limit: the client's fault, so a 400, not a 500.
        raise InvalidRequestError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem.get("loc", ()))
    return f"{where or 'body'}: {problem.get('msg', 'is invalid')}"


# --- the stream: UI message chunks ---------------------------------------------------------------
UI_MESSAGE_STREAM_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "connection": "keep-alive",
    "x-vercel-ai-ui-message-stream": "v1",
    "x-accel-buffering": "no",
}
"""The SDK's `UI_MESSAGE_STREAM_HEADERS`, verbatim (the client checks none of them)."""

DONE = b"data: [DONE]\n\n"

FinishReason = Literal["stop", "length", "content-filter", "tool-calls", "error", "other"]
"""The reasons 6.x accepts (7.x also accepts `interrupted`)."""

FINISH_REASON_BY_STATUS: dict[RunStatus, FinishReason] = {
    RunStatus.SUCCEEDED: "stop",
    RunStatus.FAILED: "error",
    RunStatus.EXPIRED: "error",
    RunStatus.CANCELLED: "other",
}

FALLBACK_ERROR_TEXT = {
    RunStatus.FAILED: "The run failed.",
    RunStatus.EXPIRED: "The run did not finish in time.",
}


class UIChunk(BaseModel):
    """One UI message chunk: `type` first, camelCase keys, as `JSON.stringify` writes them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")

    omit_none: ClassVar[bool] = False
    """Leave out unset optional keys (start, finish). Tool inputs and outputs keep their nulls."""

    def encode(self) -> bytes:
        return ServerSentEvent(data=self.model_dump_json(by_alias=True, exclude_none=self.omit_none)).encode()


class StartChunk(UIChunk):
    omit_none = True
    type: Literal["start"] = "start"
    message_id: str | None = None
    message_metadata: dict[str, Any] | None = None


class StartStepChunk(UIChunk):
    type: Literal["start-step"] = "start-step"


class FinishStepChunk(UIChunk):
    type: Literal["finish-step"] = "finish-step"


class TextStartChunk(UIChunk):
    type: Literal["text-start"] = "text-start"
    id: str


class TextDeltaChunk(UIChunk):
    type: Literal["text-delta"] = "text-delta"
    id: str
    delta: str


class TextEndChunk(UIChunk):
    type: Literal["text-end"] = "text-end"
    id: str


class ToolInputAvailableChunk(UIChunk):
    type: Literal["tool-input-available"] = "tool-input-available"
    tool_call_id: str
    tool_name: str
    input: Any


class ToolOutputAvailableChunk(UIChunk):
    type: Literal["tool-output-available"] = "tool-output-available"
    tool_call_id: str
    output: Any


class ErrorUIChunk(UIChunk):
    type: Literal["error"] = "error"
    error_text: str


class FinishChunk(UIChunk):
    omit_none = True
    type: Literal["finish"] = "finish"
    finish_reason: FinishReason | None = None
    message_metadata: dict[str, Any] | None = None


UIMessageChunk = Annotated[
    StartChunk
    | StartStepChunk
    | FinishStepChunk
    | TextStartChunk
    | TextDeltaChunk
    | TextEndChunk
    | ToolInputAvailableChunk
    | ToolOutputAvailableChunk
    | ErrorUIChunk
    | FinishChunk,
    Field(discriminator="type"),
]
"""Every chunk this format sends: a decoder for tests and Python clients."""


class UIMessageStreamEncoder:
    """One response's worth of state: the open text part, the step, the tool calls shown."""

    def __init__(self, context: StreamContext) -> None:
        self._context = context
        self._resumed = context.resumed_after > 0
        self._open_text_id: str | None = None
        self._step_has_tool_results = False
        self._shown_tool_calls: set[str] = set()
        self._tally = RunTally(context.run)
        self._error_shown = False
        self._finished = False

    def open(self) -> bytes:
        if self._resumed:
            return b""
        start = StartChunk(message_id=self._context.message_id, message_metadata={"runId": self._context.run.run_id})
        return start.encode() + StartStepChunk().encode()

    def encode(self, stored: StoredChunk) -> bytes:
        if self._finished:
            return b""  # one finish per response, whatever follows the end chunk
        chunk = stored.chunk
        out: list[UIChunk] = []
        if isinstance(chunk, TextChunk):
            self._next_step_if_tools_answered(out)
            if self._open_text_id is None:
                self._open_text_id = f"txt_{stored.seq}"
                out.append(TextStartChunk(id=self._open_text_id))
            out.append(TextDeltaChunk(id=self._open_text_id, delta=chunk.text))
        elif isinstance(chunk, ToolUseChunk):
            self._close_text(out)
            self._next_step_if_tools_answered(out)
            self._shown_tool_calls.add(chunk.id)
            out.append(ToolInputAvailableChunk(tool_call_id=chunk.id, tool_name=chunk.name, input=chunk.input))
        elif isinstance(chunk, ToolResultChunk):
            self._close_text(out)
            if chunk.id in self._shown_tool_calls or self._resumed:
                out.append(ToolOutputAvailableChunk(tool_call_id=chunk.id, output=chunk.output))
                self._step_has_tool_results = True
        elif isinstance(chunk, UsageChunk):
            self._tally.observe(chunk)
        elif isinstance(chunk, ErrorChunk):
            self._close_text(out)
            out.append(ErrorUIChunk(error_text=chunk.message))
            self._error_shown = True
        elif isinstance(chunk, EndChunk):
            return self._end(chunk, out)
        return b"".join(part.encode() for part in out)

    def ping(self) -> bytes:
        return PING

    @property
    def finished(self) -> bool:
        return self._finished

    # -------------------------------------------------------------------------------------------
    def _close_text(self, out: list[UIChunk]) -> None:
        if self._open_text_id is not None:
            out.append(TextEndChunk(id=self._open_text_id))
            self._open_text_id = None

    def _next_step_if_tools_answered(self, out: list[UIChunk]) -> None:
        if self._step_has_tool_results:
            out.append(FinishStepChunk())
            out.append(StartStepChunk())
            self._step_has_tool_results = False

    def _end(self, end: EndChunk, out: list[UIChunk]) -> bytes:
        self._finished = True
        self._close_text(out)
        if end.status in FALLBACK_ERROR_TEXT and not self._error_shown:
            recorded = self._context.run.error
            out.append(ErrorUIChunk(error_text=recorded.message if recorded else FALLBACK_ERROR_TEXT[end.status]))
        out.append(FinishStepChunk())
        reason = FINISH_REASON_BY_STATUS.get(end.status, "other")
        out.append(FinishChunk(finish_reason=reason, message_metadata=self._metadata(end)))
        return b"".join(part.encode() for part in out) + DONE

    def _metadata(self, end: EndChunk) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        usage = self._tally.usage
        if usage is not None:
            metadata["usage"] = {
                "model": usage.model,
                "inputTokens": usage.input_tokens,
                "outputTokens": usage.output_tokens,
                "totalTokens": usage.input_tokens + usage.output_tokens,
            }
        metadata["status"] = end.status.value
        return metadata


class UIMessageStreamFormat:
    name = "ui-message-stream"
    media_type = "text/event-stream"

    def headers(self, context: StreamContext) -> dict[str, str]:
        headers = dict(UI_MESSAGE_STREAM_HEADERS)
        if context.conversation_id is not None:
            headers["x-conversation-id"] = context.conversation_id
        return headers

    def encoder(self, context: StreamContext) -> UIMessageStreamEncoder:
        return UIMessageStreamEncoder(context)


UI_MESSAGE_STREAM = UIMessageStreamFormat()
