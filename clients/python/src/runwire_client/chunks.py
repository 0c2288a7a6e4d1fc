"""The chunks of a run's stream, as typed models of this package (nothing comes from the server's).

Every chunk has `.type` and its own fields (snake_case here, camelCase on the wire) and `.seq`, the
event's sequence number (the SSE `id`; `None` for `status`, which is not part of the run's log).
A type this client does not know yet becomes an `UnknownChunk` that keeps every field, so a newer
server does not break an older client. `end` is a chunk here too: `EndChunk.status` says how the
run ended.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields kept (a newer server may add some)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def wire(self) -> dict[str, Any]:
        """The object as the API sends it."""
        return self.model_dump(by_alias=True, mode="json", exclude={"seq"})


class ClientToolAction(WireModel):
    kind: Literal["client_tool"] = "client_tool"
    tool_call_id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ApprovalAction(WireModel):
    kind: Literal["approval"] = "approval"
    approval_id: str
    tool_call_id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class UnknownAction(WireModel):
    kind: str


RequiredAction = Annotated[ClientToolAction | ApprovalAction | UnknownAction, Field(union_mode="left_to_right")]
"""What a waiting run asks for: a client tool's output, or a person's approval."""


class BaseChunk(WireModel):
    type: str
    seq: int | None = Field(default=None, exclude=True)
    """The event's sequence number; `None` for events outside the run's log (`status`)."""

    def as_event(self) -> dict[str, Any]:
        """The event as the poll endpoint shows it: `{"seq", "event": "data", "data": <chunk>}`."""
        return {"seq": self.seq, "event": "data", "data": self.wire()}


class TextChunk(BaseChunk):
    type: Literal["text"] = "text"
    text: str


class ToolUseChunk(BaseChunk):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    executor: str = "server"
    """`server`, or `client`: your code runs it (answer with `runs.submit_tool_outputs`)."""


class ToolResultChunk(BaseChunk):
    type: Literal["tool_result"] = "tool_result"
    id: str
    output: Any = None
    is_error: bool = False


class StepEndChunk(BaseChunk):
    type: Literal["step_end"] = "step_end"
    step: int
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


class InterruptedChunk(BaseChunk):
    type: Literal["interrupted"] = "interrupted"
    reason: str
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class RequiresActionChunk(BaseChunk):
    type: Literal["requires_action"] = "requires_action"
    actions: list[RequiredAction]
    expires_at: str | None = None


class UsageChunk(BaseChunk):
    type: Literal["usage"] = "usage"
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class ErrorChunk(BaseChunk):
    type: Literal["error"] = "error"
    code: str
    message: str = ""


class StatusChunk(BaseChunk):
    """Not part of the log: e.g. `phase: "recovering"` while the run is between workers."""

    type: Literal["status"] = "status"
    phase: str | None = None


class EndChunk(BaseChunk):
    """The last event of every run: `status` is `succeeded`, `failed`, `cancelled` or `expired`."""

    type: Literal["end"] = "end"
    status: str | None = None

    def as_event(self) -> dict[str, Any]:
        return {"seq": self.seq, "event": "end", "data": {"status": self.status}}


class UnknownChunk(BaseChunk):
    """A chunk type this client does not know: every field is kept (`model_extra`, `wire()`)."""


Chunk = Annotated[
    TextChunk | ToolUseChunk | ToolResultChunk | StepEndChunk | InterruptedChunk | RequiresActionChunk
    | UsageChunk | ErrorChunk | StatusChunk | EndChunk,
    Field(discriminator="type"),
]
"""Every chunk type this client knows, one union discriminated on `.type`."""

KNOWN_CHUNK_TYPES = frozenset(
    ["text", "tool_use", "tool_result", "step_end", "interrupted", "requires_action", "usage", "error", "status", "end"]
)
_known_chunk: TypeAdapter[Any] = TypeAdapter(Chunk)

AnyChunk = (
    TextChunk | ToolUseChunk | ToolResultChunk | StepEndChunk | InterruptedChunk | RequiresActionChunk
    | UsageChunk | ErrorChunk | StatusChunk | EndChunk | UnknownChunk
)


def parse_chunk(data: dict[str, Any], seq: int | None = None) -> AnyChunk:
    """One chunk from its JSON; an unknown type, or a known one whose shape changed, stays whole."""
    payload = {**data, "seq": seq}
    if data.get("type") in KNOWN_CHUNK_TYPES:
        try:
            chunk: AnyChunk = _known_chunk.validate_python(payload)
            return chunk
        except ValidationError:
            pass
    return UnknownChunk.model_validate({**payload, "type": str(data.get("type", "unknown"))})


def parse_event(event: str, data: dict[str, Any], seq: int | None) -> AnyChunk:
    """A stream or poll event (`data` or `end`) as a chunk: `end`'s `{"status"}` becomes an `EndChunk`."""
    if event == "end":
        status = data.get("status")
        return EndChunk(seq=seq, status=status if isinstance(status, str) else None)
    return parse_chunk(data, seq)
