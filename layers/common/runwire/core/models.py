"""What crosses a boundary: run requests, run records, chunks, queue messages.

Field names on the wire follow seed 000 (camelCase); Python attributes are snake_case.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from pydantic.alias_generators import to_camel

# Identifiers end up inside DynamoDB keys ("RUN#<org>#<run>"), so they may not contain '#'.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


MAX_JSON_DEPTH = 32
"""Free-form JSON (context, tool schemas) may nest this deep: deeper is refused, not stored."""


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH + 1) -> int:
    """How deep `value` nests (a scalar is 0), counted no further than `limit`."""
    if limit <= 0 or not isinstance(value, (dict, list)):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((json_depth(child, limit - 1) for child in children), default=0)


def bounded_json(value: Any) -> Any:
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"nests deeper than {MAX_JSON_DEPTH} levels")
    return value


BoundedObject = Annotated[dict[str, Any], AfterValidator(bounded_json)]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; strict types so a wrong type is a 400."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="ignore")


# --- the run request (seed 000's body) ----------------------------------------------------------
class HistoryMessage(WireModel):
    role: Literal["user", "assistant"]
    content: StrictStr


class RunSettings(WireModel):
    """Model settings forwarded to the provider. Unknown keys are refused rather than silently dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=64000)] | None = None
    temperature: Annotated[float, Field(ge=0, le=1, strict=False)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1, strict=False)] | None = None
    stop_sequences: list[StrictStr] | None = Field(default=None, max_length=4)

    @model_validator(mode="after")
    def _one_sampling_knob(self) -> RunSettings:
        # Current Claude models refuse both at once; better a 400 now than a failed run later.
        if self.temperature is not None and self.top_p is not None:
            raise ValueError("set 'temperature' or 'topP', not both")
        return self


TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
ToolName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]


class ClientTool(WireModel):
    """A tool the client runs (MCP's tool shape). The run waits for its output (`requires_action`)."""

    name: ToolName
    description: StrictStr = ""
    input_schema: BoundedObject = Field(default_factory=lambda: {"type": "object", "properties": {}})


class FileReference(WireModel):
    path: Annotated[str, Field(min_length=1, max_length=1024)]
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    mime_type: StrictStr | None = None


class ImageInput(WireModel):
    url: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    data: StrictStr | None = None
    mime_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ImageInput:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image needs exactly one of 'url' or 'data'")
        if self.data is not None and self.mime_type is None:
            raise ValueError("an inline image ('data') needs 'mimeType'")
        return self


class RunWebhook(WireModel):
    """Where to POST this run's webhook events, signed with the org's secret (docs/api.md, "Webhooks")."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=2048)]


MultitaskStrategy = Literal["reject", "enqueue", "interrupt"]
"""What a run started on a conversation does when another run of it is still active (LangGraph's
multitask strategies): `reject` it (409), `enqueue` it behind the active one, or `interrupt` the
active one (cancel it, keep what it wrote) and then run."""


class RunRequest(WireModel):
    task: Annotated[str, Field(min_length=1, max_length=100_000)]
    agent_role: Annotated[str, Field(min_length=1, max_length=64)] = "chat"
    agent_instructions: Annotated[str, Field(max_length=50_000)] | None = None
    conversation_history: list[HistoryMessage] | None = Field(default=None, max_length=200)
    conversation_id: Identifier | None = None
    context: BoundedObject | None = None
    settings: RunSettings | None = None
    memory_ttl: Annotated[StrictInt, Field(gt=0, le=31_536_000)] | None = None
    client_mcp_tools: list[ClientTool] | None = Field(default=None, max_length=64)
    approval_required: list[ToolName] | None = Field(default=None, max_length=64)
    """Server tools that wait for a person's approval before they run (besides the agent's own list)."""
    available_tools: list[StrictStr] | None = Field(default=None, max_length=128)
    files: list[FileReference] | None = Field(default=None, max_length=20)
    images: list[ImageInput] | None = Field(default=None, max_length=20)
    multitask_strategy: MultitaskStrategy | None = None
    """With `conversationId`: what happens when the conversation has an active run (default `reject`)."""
    webhook: RunWebhook | None = None

    @model_validator(mode="after")
    def _task_not_blank(self) -> RunRequest:
        if not self.task.strip():
            raise ValueError("'task' must not be blank")
        if self.multitask_strategy is not None and self.conversation_id is None:
            raise ValueError("'multitaskStrategy' applies to runs on a conversation: name a 'conversationId'")
        names = [tool.name for tool in self.client_mcp_tools or []]
        if len(names) != len(set(names)):
            raise ValueError("'clientMcpTools' names must be unique")
        return self


# --- run state ----------------------------------------------------------------------------------
class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    REQUIRES_ACTION = "requires_action"
    """Waiting for its client: client tool outputs or approvals. No worker holds it."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.EXPIRED})


class Usage(WireModel):
    model: StrictStr
    input_tokens: StrictInt = 0
    output_tokens: StrictInt = 0


class RunError(WireModel):
    code: StrictStr
    message: StrictStr


class ClientToolAction(WireModel):
    kind: Literal["client_tool"] = "client_tool"
    tool_call_id: StrictStr
    name: StrictStr
    input: dict[str, Any]


class ApprovalAction(WireModel):
    kind: Literal["approval"] = "approval"
    approval_id: StrictStr
    tool_call_id: StrictStr
    name: StrictStr
    input: dict[str, Any]


RequiredAction = Annotated[ClientToolAction | ApprovalAction, Field(discriminator="kind")]


# --- answers to a waiting run ---------------------------------------------------------------------
class ToolOutput(WireModel):
    """A client tool's output, for `POST /v1/runs/{runId}/tool-outputs`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    tool_call_id: Annotated[str, Field(min_length=1, max_length=256)]
    output: Annotated[Any, AfterValidator(bounded_json)] = None
    is_error: StrictBool = False


class ApprovalDecision(WireModel):
    """A person's answer to an approval request, for `POST /v1/runs/{runId}/approvals`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    approval_id: Annotated[str, Field(min_length=1, max_length=256)]
    approved: StrictBool
    reason: Annotated[str, Field(max_length=2000)] | None = None


class PendingAction(WireModel):
    """What a waiting run asked for, and the answer once it came (bookkeeping on the run item)."""

    action: RequiredAction
    input_hash: StrictStr
    output: ToolOutput | None = None
    decision: ApprovalDecision | None = None

    @property
    def answered(self) -> bool:
        return self.output is not None or self.decision is not None

    @property
    def tool_call_id(self) -> str:
        return self.action.tool_call_id


class RunRecord(WireModel):
    """The stored run. Times are epoch seconds; `expires_at` is the DynamoDB TTL attribute."""

    run_id: Identifier
    org_id: Identifier
    user_id: StrictStr
    agent_id: StrictStr
    status: RunStatus
    request: RunRequest
    created_at: float = Field(strict=False)
    expires_at: StrictInt
    started_at: float | None = Field(default=None, strict=False)
    finished_at: float | None = Field(default=None, strict=False)
    lease_expires_at: float | None = Field(default=None, strict=False)
    cancel_requested: StrictBool = False
    usage: Usage | None = None
    error: RunError | None = None
    actions: list[PendingAction] | None = None
    """The latest wait's actions and their answers (kept after the run resumes, for idempotent answers)."""
    action_expires_at: float | None = Field(default=None, strict=False)
    """While `requires_action`: when the run ends `expired` if it is still not fully answered."""
    last_seq: StrictInt = 0
    """The seq of the last chunk when the run last stopped for its client: where a non-worker writer
    (cancel, the action timeout) appends the terminal sequence."""
    lease_owner: StrictStr | None = None
    """The claim that holds the running run: only its worker's writes are accepted (fencing)."""
    attempts: StrictInt = 0
    """How many times a worker claimed the run (a wait's resumption and a take-over each count)."""
    takeovers: StrictInt = 0
    """Take-overs since the run's last fresh claim: workers that died on this stretch of work."""
    after_run_id: Identifier | None = None
    """The conversation's run this one was queued behind (`multitaskStrategy` `enqueue` or
    `interrupt`): it starts once that run, and any it waited for, no longer runs."""
    live_usage: Usage | None = None
    """The running worker's usage so far (all steps, the one in progress included), renewed with its
    lease: what a take-over knows of the tokens a dead worker used beyond what its log records."""

    def lease_lapsed(self, now: float) -> bool:
        """Running, but nobody holds it: its worker stopped renewing its lease."""
        return self.status is RunStatus.RUNNING and self.lease_expires_at is not None and now >= self.lease_expires_at

    def is_expired(self, now: float) -> bool:
        # DynamoDB deletes expired items up to two days late and moto never does: check on read.
        return self.expires_at <= now


# --- chunks (what the worker writes and every wire format is encoded from) ----------------------
class TextChunk(WireModel):
    type: Literal["text"] = "text"
    text: StrictStr


ToolExecutor = Literal["server", "client"]


def denial(reason: str) -> dict[str, Any]:
    """The result of a tool call a person denied, as the log and every format show it."""
    return {"denied": True, "reason": reason}


def is_denial(output: Any, is_error: bool) -> bool:
    return is_error and isinstance(output, dict) and output.get("denied") is True


class ToolUseChunk(WireModel):
    type: Literal["tool_use"] = "tool_use"
    id: StrictStr
    name: StrictStr
    input: dict[str, Any]
    executor: ToolExecutor = "server"
    """Who runs it: the server (after approval, for tools that need one) or the client."""


class ToolResultChunk(WireModel):
    type: Literal["tool_result"] = "tool_result"
    id: StrictStr
    output: Any
    is_error: StrictBool = False

    @property
    def denied(self) -> bool:
        """A person denied this call: the output is `{"denied": true, "reason": …}`."""
        return is_denial(self.output, self.is_error)


class StepEndChunk(WireModel):
    """One model call ended; its own token usage (not cumulative). Steps are counted from 1."""

    type: Literal["step_end"] = "step_end"
    step: StrictInt
    model: StrictStr
    input_tokens: StrictInt
    output_tokens: StrictInt


class RequiresActionChunk(WireModel):
    """The run waits for its client; `expires_at` is when it ends `expired` if not answered (ISO 8601)."""

    type: Literal["requires_action"] = "requires_action"
    actions: list[RequiredAction]
    expires_at: StrictStr


class InterruptedChunk(WireModel):
    """A model call was cut off (its worker died, or its stream broke) and the run carries on from
    what was written: the tokens that attempt used, so the run's usage sums every attempt.
    `reason`: `worker_lost`, or the model's error code."""

    type: Literal["interrupted"] = "interrupted"
    reason: StrictStr
    model: StrictStr
    input_tokens: StrictInt
    output_tokens: StrictInt


class UsageChunk(WireModel):
    type: Literal["usage"] = "usage"
    model: StrictStr
    input_tokens: StrictInt
    output_tokens: StrictInt


class ErrorChunk(WireModel):
    type: Literal["error"] = "error"
    code: StrictStr
    message: StrictStr


class EndChunk(WireModel):
    """The terminal marker, rendered as `event: end` / `data: {"status": …}` in the native format."""

    type: Literal["end"] = "end"
    status: RunStatus


Chunk = Annotated[
    TextChunk
    | ToolUseChunk
    | ToolResultChunk
    | StepEndChunk
    | InterruptedChunk
    | RequiresActionChunk
    | UsageChunk
    | ErrorChunk
    | EndChunk,
    Field(discriminator="type"),
]


class StoredChunk(WireModel):
    seq: StrictInt
    chunk: Chunk
    written_at: float = Field(strict=False)


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a running run: `owner` is unique per claim; `expires_at` epoch seconds."""

    owner: str
    expires_at: float


# --- the queue message --------------------------------------------------------------------------
class RunMessage(WireModel):
    """The SQS body: only keys. The request itself lives in the run record (SQS caps bodies at 256 KB)."""

    run_id: Identifier
    org_id: Identifier
    after_run_id: Identifier | None = None
    """Set when the run waits behind another run of its conversation (the worker checks before claiming)."""


class ConversationMessage(WireModel):
    """One persisted turn half: what the user asked, or the assistant's full reply."""

    role: Literal["user", "assistant"]
    content: StrictStr
    run_id: StrictStr
    created_at: float = Field(strict=False)


class Caller(BaseModel):
    """Who is asking: from a verified JWT, with the org already checked against the token."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    org_id: str


# --- listings: GET /v1/runs and GET /v1/conversations -------------------------------------------
ListedT = TypeVar("ListedT")
LISTING_PREVIEW_CHARS = 200
"""A conversation's listing shows the first this many characters of its last reply."""


class RunSummary(WireModel):
    """A run as a listing shows it: what it is and how it went, without its request or output."""

    run_id: Identifier
    agent_id: StrictStr
    status: RunStatus
    conversation_id: StrictStr | None = None
    created_at: float = Field(strict=False)
    expires_at: StrictInt
    started_at: float | None = Field(default=None, strict=False)
    finished_at: float | None = Field(default=None, strict=False)
    cancel_requested: StrictBool = False
    usage: Usage | None = None
    error: RunError | None = None

    @classmethod
    def of(cls, run: RunRecord) -> RunSummary:
        return cls(
            run_id=run.run_id, agent_id=run.agent_id, status=run.status, conversation_id=run.request.conversation_id,
            created_at=run.created_at, expires_at=run.expires_at, started_at=run.started_at,
            finished_at=run.finished_at, cancel_requested=run.cancel_requested, usage=run.usage, error=run.error,
        )


class ConversationSummary(WireModel):
    """A conversation as a listing shows it: its latest turn (written with each turn)."""

    conversation_id: StrictStr
    last_message_at: float = Field(strict=False)
    """When the latest stored turn's run was created (what orders the listing)."""
    last_message: StrictStr
    """The start of the latest reply, at most LISTING_PREVIEW_CHARS characters."""
    last_run_id: StrictStr
    expires_at: StrictInt
    active_run_id: StrictStr | None = None
    """Filled by the listing service: the run now answering in it (queued, running or waiting)."""


def listing_preview(text: str) -> str:
    return text[:LISTING_PREVIEW_CHARS]


@dataclass(frozen=True)
class ListPage(Generic[ListedT]):
    """One page of a listing: its items, and where the next page starts (None: there is none)."""

    items: list[ListedT]
    next_position: str | None
