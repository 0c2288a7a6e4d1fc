"""The run's neutral transcript, and how it is rebuilt from the run's log.

A run's stored chunks are the source of truth: any worker can rebuild the conversation the model
has seen so far from them, and carry on (after its client answered, or after another worker
died). The transcript is neutral: messages of text, image, document, tool call and tool result
blocks. Providers translate it at the edge (Anthropic's Messages shape lives in its adapter).

One builder serves both ways in: `rebuild()` feeds it the stored chunks, and the stepper feeds it
the chunks it is about to emit, so the transcript a worker holds in memory and the one the next
worker rebuilds from the log are the same by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .models import (
    ApprovalAction,
    Chunk,
    HistoryMessage,
    InterruptedChunk,
    RequiredAction,
    RequiresActionChunk,
    RunRequest,
    StepEndChunk,
    TextChunk,
    ToolExecutor,
    ToolResultChunk,
    ToolUseChunk,
    is_denial,
)

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ImageBlock:
    url: str | None = None
    data: str | None = None
    """Base64, with `mime_type`."""
    mime_type: str | None = None


@dataclass(frozen=True)
class DocumentBlock:
    title: str
    text: str


@dataclass(frozen=True)
class ToolCallBlock:
    id: str
    name: str
    input: dict[str, Any]
    executor: ToolExecutor = "server"
    needs_approval: bool = False
    """A server tool that runs only once a person approved it."""


@dataclass(frozen=True)
class ToolResultBlock:
    tool_call_id: str
    output: Any
    is_error: bool = False

    @property
    def denied(self) -> bool:
        return is_denial(self.output, self.is_error)

    def text_for_model(self) -> str:
        """What the model reads: a denial as `denied: <reason>`, a string as itself, else JSON."""
        if self.denied:
            reason = self.output.get("reason") or "the user denied this tool call"
            return f"denied: {reason}"
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output)


Block = TextBlock | ImageBlock | DocumentBlock | ToolCallBlock | ToolResultBlock


@dataclass(frozen=True)
class Message:
    role: Role
    blocks: tuple[Block, ...]

    @property
    def text(self) -> str:
        return "".join(block.text for block in self.blocks if isinstance(block, TextBlock))

    @property
    def tool_results(self) -> list[ToolResultBlock]:
        return [block for block in self.blocks if isinstance(block, ToolResultBlock)]

    @property
    def tool_calls(self) -> list[ToolCallBlock]:
        return [block for block in self.blocks if isinstance(block, ToolCallBlock)]


@dataclass(frozen=True)
class TokenUsage:
    """Token usage: of one model call, or summed over a run's steps (across its waits)."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0

    def plus(self, model: str, input_tokens: int, output_tokens: int) -> TokenUsage:
        return TokenUsage(model, self.input_tokens + input_tokens, self.output_tokens + output_tokens)


def opening_messages(request: RunRequest, history: Iterable[HistoryMessage]) -> list[Message]:
    """The conversation before the run's first step: the history, then the user's task."""
    messages = [Message(m.role, (TextBlock(m.content),)) for m in history]
    blocks: list[Block] = [
        ImageBlock(url=image.url, data=image.data, mime_type=image.mime_type) for image in request.images or []
    ]
    blocks.append(TextBlock(request.task))
    messages.append(Message("user", tuple(blocks)))
    return messages


@dataclass
class TranscriptBuilder:
    """Folds chunks, in log order, into messages; also tracks steps, usage and open tool calls."""

    messages: list[Message]
    steps: int = 0
    usage: TokenUsage | None = None
    reply: list[str] = field(default_factory=list)
    """Every text chunk of the run: the assistant's reply, for conversation memory."""
    _assistant: list[Block] = field(default_factory=list)
    _text: list[str] = field(default_factory=list)
    """The open text block's pieces: joined once, when the block closes (not once per token)."""
    _results: list[ToolResultBlock] = field(default_factory=list)
    _approvals: set[str] = field(default_factory=set)

    def add(self, chunk: Chunk) -> None:
        if isinstance(chunk, TextChunk):
            self.add_text(chunk.text)
        elif isinstance(chunk, ToolUseChunk):
            self._open_step()
            self._end_text()
            self._assistant.append(ToolCallBlock(chunk.id, chunk.name, chunk.input, chunk.executor))
        elif isinstance(chunk, StepEndChunk):
            self.steps = max(self.steps, chunk.step)
            self._count(chunk.model, chunk.input_tokens, chunk.output_tokens)
            self._close_step()
        elif isinstance(chunk, InterruptedChunk):
            # A cut-off attempt at the current model call: its tokens count, and the step stays
            # open, so the next attempt continues its text.
            self._count(chunk.model, chunk.input_tokens, chunk.output_tokens)
        elif isinstance(chunk, ToolResultChunk):
            self._close_step()
            self._results.append(ToolResultBlock(chunk.id, chunk.output, chunk.is_error))
        elif isinstance(chunk, RequiresActionChunk):
            self.wait_for(chunk.actions)

    def add_text(self, text: str) -> None:
        """The model's text, a token or a coalesced chunk at a time (adjacent pieces make one block)."""
        self._open_step()
        self.reply.append(text)
        if text:
            self._text.append(text)

    def wait_for(self, actions: Iterable[RequiredAction]) -> None:
        """The run stops for its client: the step is closed, and the calls waiting for approval are
        marked. The stepper folds its suspension in here too, as the log's requires_action will be."""
        self._close_step()
        self._approvals.update(a.tool_call_id for a in actions if isinstance(a, ApprovalAction))

    def transcript(self) -> list[Message]:
        """The messages so far, the open step and pending results included."""
        messages = list(self.messages)
        assistant = self._assistant + ([TextBlock("".join(self._text))] if self._text else [])
        if assistant:
            messages.append(Message("assistant", tuple(assistant)))
        if self._results:
            messages.append(Message("user", tuple(self._results)))
        return [self._with_approvals(m) for m in messages]

    def unanswered_calls(self) -> list[ToolCallBlock]:
        """The latest step's tool calls that have no result yet, in the order the model made them."""
        transcript = self.transcript()
        answered = {r.tool_call_id for m in transcript for r in m.tool_results}
        latest = next((m for m in reversed(transcript) if m.role == "assistant"), None)
        if latest is None:
            return []
        return [call for call in latest.tool_calls if call.id not in answered]

    @property
    def reply_text(self) -> str:
        return "".join(self.reply)

    # -------------------------------------------------------------------------------------------
    def _count(self, model: str, input_tokens: int, output_tokens: int) -> None:
        self.usage = (self.usage or TokenUsage(model)).plus(model, input_tokens, output_tokens)

    def _open_step(self) -> None:
        if self._results:  # the results of the last step's tools are in: a new step begins
            self.messages.append(Message("user", tuple(self._results)))
            self._results = []

    def _end_text(self) -> None:
        if self._text:
            self._assistant.append(TextBlock("".join(self._text)))
            self._text = []

    def _close_step(self) -> None:
        self._end_text()
        if self._assistant:
            self.messages.append(Message("assistant", tuple(self._assistant)))
            self._assistant = []

    def _with_approvals(self, message: Message) -> Message:
        if message.role != "assistant" or not any(
            isinstance(b, ToolCallBlock) and b.id in self._approvals for b in message.blocks
        ):
            return message
        blocks = tuple(
            ToolCallBlock(b.id, b.name, b.input, b.executor, needs_approval=True)
            if isinstance(b, ToolCallBlock) and b.id in self._approvals
            else b
            for b in message.blocks
        )
        return Message(message.role, blocks)


def rebuild(request: RunRequest, history: Iterable[HistoryMessage], chunks: Iterable[Chunk]) -> TranscriptBuilder:
    """The run as its log tells it: pure, so any worker rebuilds the same run from the same log."""
    builder = TranscriptBuilder(opening_messages(request, history))
    for chunk in chunks:
        builder.add(chunk)
    return builder
