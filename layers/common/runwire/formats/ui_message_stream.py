"""Seed 001's format (`format=ui-message-stream`): the Vercel AI SDK UI message stream, protocol v1.

Validated against the npm `ai` package 7.0.173 (the registry's latest) and 6.0.322 (the version
`tests/js` installs): `src/ui-message-stream/ui-message-chunks.ts` (the chunk schema),
`json-to-sse-transform-stream.ts` (the framing), `ui-message-stream-headers.ts` (the headers) and
`src/ui/process-ui-message-stream.ts` (the consumer that enforces ordering); and by feeding the
renderings in `tests/unit/test_wire_formats.py` through both versions' `AbstractChat` (over
`DefaultChatTransport`'s parser) and `readUIMessageStream`, including a dropped connection resumed
with a continuation. What a run that waits for its client adds (the section "Waiting" below) was
read off 6.0.322's source (the chunk schema, `process-ui-message-stream.ts`, `src/ui/chat.ts`:
`addToolApprovalResponse`, `addToolOutput`, `makeRequest`; `last-assistant-message-is-complete-
with-approval-responses.ts` and `…-with-tool-calls.ts`; `src/generate-text/stream-text.ts` for
the order the SDK's own server continues in), checked in 7.0.173's chunk schema and
`process-ui-message-stream.ts` (the same chunks, handled the same way), and tested with 6.0.322
only: its `readUIMessageStream` reads the renderings in `tests/unit/test_wire_formats.py`, and its
`AbstractChat` and `DefaultChatTransport` run the whole loop on the local stack
(`tests/js/ai_sdk_tools.mjs`). A run renders as

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
- `tool-output-available`, `tool-output-error`, `tool-output-denied` and `tool-approval-request`
  throw unless the message already holds a tool part with that `toolCallId`.
- A step is one model call: tool results end one, so the next text or tool call opens another
  (`finish-step`, `start-step`), as `streamText` does.
- `error` is what `useChat` treats as the end: the chat's processor rethrows it, the chat goes
  to status `error` with `errorText` as the message, and it reads nothing further. The SDK's own
  server still follows a model error with `finish-step` and `finish` (`finishReason: "error"`),
  and so do we: `readUIMessageStream` and other non-throwing readers get the usage and the
  reason, and transports that treat a stream without `finish` as interrupted do not reconnect.

Choices where a run has no counterpart in the protocol (deliberate divergences from seed 001):

- The terminal event is always exactly one `finish`, then `data: [DONE]`. `finishReason` is
  `stop` (succeeded), `error` (failed, expired), `other` (cancelled) or `tool-calls` (waiting for
  the client, below), values both SDK versions accept (7.x added `interrupted`, which 6.x rejects).
  `messageMetadata` is `{"usage": {"model", "inputTokens", "outputTokens", "totalTokens"},
  "status": <run status>}`, `usage` left out when no model was called, and at a wait (the run's
  usage so far is only known exactly once it ends). `start` carries `{"runId"}` so a client can
  cancel or re-attach; the client merges both into the message's `metadata`.
- A failed or expired run always shows an `error` before its finish: the error chunk's message,
  or for a run that ended without one, the run's recorded error or a generic sentence.
- A cancelled run sends no `abort` chunk: the SDK sends `abort` only when its own server stops,
  and then omits `finish`; the cancel shows as `finishReason: "other"` and status `cancelled`.
- Seed 001 reports usage per step ("step-finish usage telemetry"); a run's stored usage is
  per run, so it is reported once, on `finish`. `step_end` chunks are not shown.
- Tool results for a call this stream never showed are dropped on a stream read from the start
  (the worker never writes one; the client would fail the whole message on it).

Waiting (the run asks its client to act, `requires_action`). The SDK has no way to keep a
response open while the client acts: `useChat` acts (`addToolApprovalResponse`, `addToolOutput`)
once a response has ended, and sends the answer as a new request. So:

- A client tool call is `tool-input-available` without `providerExecuted`, which is what makes the
  client's `onToolCall` run it and `lastAssistantMessageIsCompleteWithToolCalls` wait for its
  output. (Server tool calls carry no `providerExecuted` either, as with the SDK's own server: the
  flag means "the model provider ran it".)
- Each approval is `tool-approval-request {approvalId, toolCallId}` (the part goes to
  `approval-requested`, with `approval.id` our approval id), after the call's
  `tool-input-available`.
- The wait ends the response: the open text part closes, then `finish-step`, `finish` with
  `finishReason: "tool-calls"` (what the SDK's server sends when a step ends in tool calls) and
  `messageMetadata: {"status": "requires_action"}`, then `data: [DONE]`; the encoder is
  `finished`. This is the run's *current* wait: one after the run's last recorded wait, or that
  wait itself while the run still waits. A replay of a run that has moved on shows its earlier
  waits' approval requests and carries on, so a reloaded page rebuilds the whole message.
- Answers come back as a new request (`follow_up_answers`), and the rest of the run is streamed
  as the same assistant message (`UI_MESSAGE_CONTINUATION`): `start` with the same `messageId`,
  no `start-step`, then the results of the answered calls, then the next step — the order of the
  SDK's own `streamText` when it continues after approvals (`stream-text.ts`: the tool execution
  stream is added before the first step's `start-step`). Denied calls are `tool-output-denied`;
  a client tool's error output is `tool-output-error {errorText}`; every other result (server
  tool errors included, whose JSON output the UI can show) is `tool-output-available`.

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

import json
import re
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
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ..core.actions import RunAnswers
from ..core.models import (
    IDENTIFIER_PATTERN,
    ApprovalAction,
    ApprovalDecision,
    ClientTool,
    ClientToolAction,
    EndChunk,
    ErrorChunk,
    HistoryMessage,
    RequiresActionChunk,
    RunRecord,
    RunRequest,
    RunStatus,
    StoredChunk,
    TextChunk,
    ToolName,
    ToolOutput,
    ToolResultChunk,
    ToolUseChunk,
    UsageChunk,
)
from ..errors import InvalidRequestError, NotWaitingError
from .base import SURFACE_MULTITASK_STRATEGY, RunTally, StreamContext
from .sse import PING, ServerSentEvent

# --- the request: POST /api/agent/chat/stream ----------------------------------------------------
HISTORY_LIMIT = 200
"""`RunRequest.conversation_history` holds at most 200 messages; older turns are dropped."""

ANSWERED_TOOL_STATES = frozenset({"approval-responded", "output-available", "output-error"})
"""Tool part states in which `useChat` has an answer for the server: `addToolApprovalResponse`
moves a part to `approval-responded`, `addToolOutput` to `output-available` or `output-error`."""


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="ignore")


class TextUIPart(_CamelModel):
    type: Literal["text"]
    text: StrictStr


class OtherUIPart(_CamelModel):
    """Any part that is not text (files, tool calls, reasoning, step-start…): accepted as sent; tool
    parts are read (`ToolUIPart`) only where they answer a waiting run."""

    model_config = ConfigDict(strict=True, extra="allow")

    type: StrictStr

    @property
    def is_tool(self) -> bool:
        """`tool-<name>` (a static tool) or `dynamic-tool`: the SDK's `isToolUIPart`."""
        return self.type.startswith("tool-") or self.type == "dynamic-tool"

    @property
    def answers_something(self) -> bool:
        return self.is_tool and (self.model_extra or {}).get("state") in ANSWERED_TOOL_STATES


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

    @property
    def tool_parts(self) -> list[OtherUIPart]:
        return [part for part in self.parts if isinstance(part, OtherUIPart) and part.is_tool]


class ToolApproval(_CamelModel):
    """A tool part's `approval`: `{id}` when requested, `{id, approved, reason?}` once answered."""

    id: StrictStr
    approved: StrictBool | None = None
    reason: StrictStr | None = None


class ToolUIPart(_CamelModel):
    """The fields of an AI SDK tool part (`ToolUIPart`/`DynamicToolUIPart`) that answer a wait."""

    tool_call_id: StrictStr
    state: StrictStr
    output: Any = None
    error_text: StrictStr | None = None
    approval: ToolApproval | None = None


TOOL_PART = TypeAdapter(ToolUIPart)


class ApprovalResponse(_CamelModel):
    tool_call_id: StrictStr
    approved: StrictBool


class UIChatStreamRequest(_CamelModel):
    """The AI SDK chat's body (`DefaultChatTransport`). Its chat `id` names the conversation when
    the body has no `conversationId`; `trigger`, `messageId` and other fields it sends are ignored.

    A request either starts a turn (its last message is the user's, with text) or answers the
    conversation's waiting run: the surface's own `approvalResponse`, or the AI SDK's own way, the
    assistant message last, its tool parts answered (see `follow_up_answers`)."""

    messages: list[UIMessage] = Field(min_length=1)
    id: StrictStr | None = None
    """The AI SDK's chat id (`useChat({id})`, sent on every request): the conversation, unless
    `conversationId` names one, and if it is a valid identifier (letters, digits, `._:-`, at most
    128); otherwise the turn starts a new conversation."""
    conversation_id: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)] | None = None
    """Seed 001's uuid, or any conversation id we echoed in `x-conversation-id` (the chat's `id`)."""
    current_page: Annotated[str, Field(max_length=2048)] | None = None
    approval_response: ApprovalResponse | None = None
    """Seed 001's answer to an approval, by tool call id."""
    client_mcp_tools: list[ClientTool] | None = Field(default=None, max_length=64)
    """Tools the client runs (the AI SDK client defines their schemas on its side)."""
    approval_required: list[ToolName] | None = Field(default=None, max_length=64)
    """Server tools that wait for the user's approval in this run."""
    on_disconnect: Literal["cancel", "continue"] = "cancel"
    """What the route does with the run when the client goes away mid-stream."""

    @model_validator(mode="after")
    def _starts_a_turn_or_answers(self) -> UIChatStreamRequest:
        if not self.starts_a_turn and not self.answers_a_wait:
            raise ValueError(
                "the last message must be a user message with text, or the assistant message whose "
                "tool calls it answers (or send 'approvalResponse')"
            )
        return self

    @property
    def conversation(self) -> str | None:
        """The conversation this request names: `conversationId`, else the chat's `id`."""
        if self.conversation_id is not None:
            return self.conversation_id
        if self.id is not None and re.fullmatch(IDENTIFIER_PATTERN, self.id):
            return self.id
        return None

    @property
    def starts_a_turn(self) -> bool:
        last = self.messages[-1]
        return last.role == "user" and bool(last.text.strip())

    @property
    def answers_a_wait(self) -> bool:
        last = self.messages[-1]
        return self.approval_response is not None or (
            last.role == "assistant" and any(part.answers_something for part in last.tool_parts)
        )


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
            conversation_id=body.conversation or new_conversation_id(),
            multitask_strategy=SURFACE_MULTITASK_STRATEGY,
            context={"currentPage": body.current_page} if body.current_page is not None else None,
            client_mcp_tools=body.client_mcp_tools,
            approval_required=body.approval_required,
        )
    except ValidationError as exc:
        # e.g. a task over RunRequest's length limit: the client's fault, so a 400, not a 500.
        raise InvalidRequestError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem.get("loc", ()))
    return f"{where or 'body'}: {problem.get('msg', 'is invalid')}"


# --- a follow-up: the answers to a waiting run ---------------------------------------------------
def waiting_conversation(body: UIChatStreamRequest) -> str | None:
    """The conversation whose waiting run this request may answer (None: it names none)."""
    return body.conversation if body.answers_a_wait else None


def answered_run_id(body: UIChatStreamRequest) -> str | None:
    """The run the answered assistant message came from: our `start` put its id in the message's
    metadata, and useChat sends the metadata back. For clients that send no `conversationId`."""
    if not body.answers_a_wait:
        return None
    last_assistant = next((m for m in reversed(body.messages) if m.role == "assistant"), None)
    metadata = last_assistant.metadata if last_assistant is not None else None
    run_id = metadata.get("runId") if isinstance(metadata, dict) else None
    return run_id if isinstance(run_id, str) else None


def follow_up_answers(body: UIChatStreamRequest, run: RunRecord | None) -> RunAnswers | None:
    """The answers this request gives to `run` (the conversation's latest run), or None when it
    starts a new turn instead.

    Answers are matched to what the run asked for: the AI SDK's tool parts by `approval.id` (our
    approval id) and `toolCallId`, seed 001's `approvalResponse` by `toolCallId`; the parts are read
    from the last assistant message only, since tool call ids may repeat across runs. A request
    that answers but also ends with a new user turn starts that turn once the run has moved on, and
    is refused (400) while the run still waits: one of the two would be lost. NotWaitingError (409)
    for an answer that finds nothing to answer and starts no turn.
    """
    if not body.answers_a_wait:
        return None
    answers = _answers_to(body, run) if run is not None else RunAnswers()
    if not answers.empty and run is not None and run.status is RunStatus.REQUIRES_ACTION and body.starts_a_turn:
        # Both at once would drop one of them: refuse, so the client sends them apart.
        raise InvalidRequestError(
            f"run {run.run_id!r} waits for an answer: send the answer without a new user message, "
            "then the new message once the run has answered"
        )
    if not answers.empty and run is not None and not body.starts_a_turn:
        return answers
    if body.starts_a_turn:
        return None
    where = f"conversation {body.conversation!r}" if body.conversation else "this request"
    raise NotWaitingError(
        f"{where} has no run waiting for these answers"
        + (f" (its latest run, {run.run_id!r}, is {run.status.value})" if run is not None else "")
    )


def _answers_to(body: UIChatStreamRequest, run: RunRecord) -> RunAnswers:
    parts = _answered_tool_parts(body)
    outputs = {part.tool_call_id: part for part in parts if part.state in ("output-available", "output-error")}
    approvals = {
        part.approval.id: part.approval for part in parts if part.approval and part.approval.approved is not None
    }
    seed001 = body.approval_response
    tool_outputs: list[ToolOutput] = []
    decisions: list[ApprovalDecision] = []
    try:
        for pending in run.actions or []:
            action = pending.action
            if isinstance(action, ClientToolAction):
                if action.tool_call_id in outputs:
                    tool_outputs.append(_tool_output(outputs[action.tool_call_id]))
                continue
            approval = approvals.get(action.approval_id)
            if approval is not None and approval.approved is not None:
                decisions.append(
                    ApprovalDecision(approval_id=action.approval_id, approved=approval.approved, reason=approval.reason)
                )
            elif seed001 is not None and seed001.tool_call_id == action.tool_call_id:
                decisions.append(ApprovalDecision(approval_id=action.approval_id, approved=seed001.approved))
    except ValidationError as exc:  # e.g. an output nested too deep, a reason too long
        raise InvalidRequestError(_first_problem(exc)) from None
    return RunAnswers(outputs=tool_outputs, decisions=decisions)


def _answered_tool_parts(body: UIChatStreamRequest) -> list[ToolUIPart]:
    last_assistant = next((m for m in reversed(body.messages) if m.role == "assistant"), None)
    if last_assistant is None:
        return []
    try:
        return [
            TOOL_PART.validate_python(part.model_dump())
            for part in last_assistant.tool_parts
            if part.answers_something
        ]
    except ValidationError as exc:
        raise InvalidRequestError("an answered tool part: " + _first_problem(exc)) from None


def _tool_output(part: ToolUIPart) -> ToolOutput:
    if part.state == "output-error":
        return ToolOutput(tool_call_id=part.tool_call_id, output=part.error_text or "", is_error=True)
    return ToolOutput(tool_call_id=part.tool_call_id, output=part.output)


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


class ToolApprovalRequestChunk(UIChunk):
    type: Literal["tool-approval-request"] = "tool-approval-request"
    approval_id: str
    tool_call_id: str


class ToolOutputAvailableChunk(UIChunk):
    type: Literal["tool-output-available"] = "tool-output-available"
    tool_call_id: str
    output: Any


class ToolOutputErrorChunk(UIChunk):
    type: Literal["tool-output-error"] = "tool-output-error"
    tool_call_id: str
    error_text: str


class ToolOutputDeniedChunk(UIChunk):
    type: Literal["tool-output-denied"] = "tool-output-denied"
    tool_call_id: str


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
    | ToolApprovalRequestChunk
    | ToolOutputAvailableChunk
    | ToolOutputErrorChunk
    | ToolOutputDeniedChunk
    | ErrorUIChunk
    | FinishChunk,
    Field(discriminator="type"),
]
"""Every chunk this format sends: a decoder for tests and Python clients."""


def error_text_of(output: Any) -> str:
    """A client tool's error output as the `errorText` the SDK shows (what `addToolOutput` took)."""
    if isinstance(output, str):
        return output
    if isinstance(output, dict) and isinstance(output.get("error"), str):
        return str(output["error"])
    return json.dumps(output, separators=(",", ":"), ensure_ascii=False)


class UIMessageStreamEncoder:
    """One response's worth of state: the open text part, the step, the tool calls shown."""

    def __init__(self, context: StreamContext, *, continues_message: bool = False) -> None:
        self._context = context
        self._continues = continues_message
        self._resumed = context.resumed_after > 0
        self._in_step = not continues_message
        """From the start we open a step; a resumed stream carries on in the client's; the rest of
        an answered message opens its next step only with the next model call (as `streamText`)."""
        self._open_text_id: str | None = None
        self._step_has_tool_results = False
        self._shown_tool_calls: set[str] = set()
        self._client_calls = {
            pending.tool_call_id for pending in context.run.actions or [] if isinstance(pending.action, ClientToolAction)
        }
        self._tally = RunTally(context.run)
        self._error_shown = False
        self._finished = False

    def open(self) -> bytes:
        start = StartChunk(message_id=self._context.message_id, message_metadata={"runId": self._context.run.run_id})
        if self._continues:
            return start.encode()
        if self._resumed:
            return b""
        return start.encode() + StartStepChunk().encode()

    def encode(self, stored: StoredChunk) -> bytes:
        if self._finished:
            return b""  # one finish per response, whatever follows the end chunk or the wait
        chunk = stored.chunk
        out: list[UIChunk] = []
        if isinstance(chunk, TextChunk):
            self._enter_step(out)
            if self._open_text_id is None:
                self._open_text_id = f"txt_{stored.seq}"
                out.append(TextStartChunk(id=self._open_text_id))
            out.append(TextDeltaChunk(id=self._open_text_id, delta=chunk.text))
        elif isinstance(chunk, ToolUseChunk):
            self._close_text(out)
            self._enter_step(out)
            self._shown_tool_calls.add(chunk.id)
            if chunk.executor == "client":
                self._client_calls.add(chunk.id)
            out.append(ToolInputAvailableChunk(tool_call_id=chunk.id, tool_name=chunk.name, input=chunk.input))
        elif isinstance(chunk, ToolResultChunk):
            self._close_text(out)
            if self._client_holds(chunk.id):
                out.append(self._result(chunk))
                self._step_has_tool_results = True
        elif isinstance(chunk, RequiresActionChunk):
            return self._requires_action(stored.seq, chunk, out)
        elif isinstance(chunk, UsageChunk):
            self._tally.observe(chunk)
        elif isinstance(chunk, ErrorChunk):
            self._close_text(out)
            if self._step_has_tool_results:
                self._enter_step(out)  # the error belongs to the step after the tool round (see _end)
            out.append(ErrorUIChunk(error_text=chunk.message))
            self._error_shown = True
        elif isinstance(chunk, EndChunk):
            return self._end(chunk, out)
        return _encode(out)

    def ping(self) -> bytes:
        return PING

    def recovering(self) -> bytes:
        return PING  # the AI SDK's stream has no part for it; the run carries on in the same message

    @property
    def finished(self) -> bool:
        return self._finished

    # -------------------------------------------------------------------------------------------
    def _client_holds(self, tool_call_id: str) -> bool:
        """The client has a part for this call: shown here, or before the point this stream resumes."""
        return tool_call_id in self._shown_tool_calls or self._resumed

    def _close_text(self, out: list[UIChunk]) -> None:
        if self._open_text_id is not None:
            out.append(TextEndChunk(id=self._open_text_id))
            self._open_text_id = None

    def _enter_step(self, out: list[UIChunk]) -> None:
        """Tool results end a step: the next text or tool call is the next model call's."""
        if self._step_has_tool_results:
            self._leave_step(out)
            self._step_has_tool_results = False
        if not self._in_step:
            out.append(StartStepChunk())
            self._in_step = True

    def _leave_step(self, out: list[UIChunk]) -> None:
        if self._in_step:
            out.append(FinishStepChunk())
            self._in_step = False

    def _result(self, chunk: ToolResultChunk) -> UIChunk:
        if chunk.denied:
            return ToolOutputDeniedChunk(tool_call_id=chunk.id)
        if chunk.is_error and chunk.id in self._client_calls:
            return ToolOutputErrorChunk(tool_call_id=chunk.id, error_text=error_text_of(chunk.output))
        return ToolOutputAvailableChunk(tool_call_id=chunk.id, output=chunk.output)

    def _requires_action(self, seq: int, chunk: RequiresActionChunk, out: list[UIChunk]) -> bytes:
        self._close_text(out)
        current = self._is_current_wait(seq)
        for action in chunk.actions:
            if not isinstance(action, ApprovalAction) or not self._client_holds(action.tool_call_id):
                continue  # a client tool call needs nothing more than its tool-input-available
            if current and action.approval_id in self._answered_approvals():
                continue  # answered already (a partial answer): the client need not be asked again
            out.append(ToolApprovalRequestChunk(approval_id=action.approval_id, tool_call_id=action.tool_call_id))
        if not current:
            return _encode(out)  # an earlier wait, answered: its results follow
        self._finished = True
        self._leave_step(out)
        out.append(FinishChunk(finish_reason="tool-calls", message_metadata={"status": RunStatus.REQUIRES_ACTION.value}))
        return _encode(out) + DONE

    def _is_current_wait(self, seq: int) -> bool:
        """A wait after the run's last recorded one is new; the recorded one is current while the
        run still waits; earlier ones were answered (a replay of a run that has moved on)."""
        run = self._context.run
        return seq > run.last_seq or (seq == run.last_seq and run.status is RunStatus.REQUIRES_ACTION)

    def _answered_approvals(self) -> set[str]:
        return {
            pending.action.approval_id
            for pending in self._context.run.actions or []
            if isinstance(pending.action, ApprovalAction) and pending.answered
        }

    def _end(self, end: EndChunk, out: list[UIChunk]) -> bytes:
        self._finished = True
        self._close_text(out)
        if self._step_has_tool_results:
            # The run ended right after tool results (the step limit, a cancel, a failure): end in a
            # step of its own, or `lastAssistantMessageIsCompleteWithToolCalls` (ai: it reads only the
            # last step) sees a finished tool round and useChat posts the same message again, for ever.
            self._enter_step(out)
        if end.status in FALLBACK_ERROR_TEXT and not self._error_shown:
            recorded = self._context.run.error
            out.append(ErrorUIChunk(error_text=recorded.message if recorded else FALLBACK_ERROR_TEXT[end.status]))
        self._leave_step(out)
        reason = FINISH_REASON_BY_STATUS.get(end.status, "other")
        out.append(FinishChunk(finish_reason=reason, message_metadata=self._metadata(end)))
        return _encode(out) + DONE

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


def _encode(chunks: list[UIChunk]) -> bytes:
    return b"".join(chunk.encode() for chunk in chunks)


class UIMessageStreamFormat:
    """`continues_message`: the format of a response that carries on the assistant message the
    client holds, after it answered the run's wait (`start` with the same `messageId`, no replay)."""

    name = "ui-message-stream"
    media_type = "text/event-stream"

    def __init__(self, *, continues_message: bool = False) -> None:
        self._continues = continues_message

    def headers(self, context: StreamContext) -> dict[str, str]:
        headers = dict(UI_MESSAGE_STREAM_HEADERS)
        if context.conversation_id is not None:
            headers["x-conversation-id"] = context.conversation_id
        return headers

    def encoder(self, context: StreamContext) -> UIMessageStreamEncoder:
        return UIMessageStreamEncoder(context, continues_message=self._continues)


UI_MESSAGE_STREAM = UIMessageStreamFormat()
UI_MESSAGE_CONTINUATION = UIMessageStreamFormat(continues_message=True)
