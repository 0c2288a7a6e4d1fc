"""The stepper: the worker's producer. Model calls and the server tools they ask for, over a transcript.

It first settles what the run's client answered while it waited (a client tool's output, an
approval: the approved tool runs now, with the input frozen when approval was asked; a denial
becomes an error result), then steps: one model call, then the server tools it asked for. It stops
when the model answers, at the step limit, or at a client tool or an approval gate (`Suspended`).

It runs on its own thread and reports through `emit`; it never writes to storage. Every chunk it
emits it also folds into its transcript, so the transcript it holds equals what a later worker
rebuilds from the log.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError
from .agents import AgentDefinition
from .ending import pending_action
from .models import (
    ApprovalAction,
    InterruptedChunk,
    PendingAction,
    RunRecord,
    RunRequest,
    StepEndChunk,
    ToolResultChunk,
    ToolUseChunk,
    denial,
)
from .ports import (
    Cancellation,
    Clock,
    ModelProvider,
    ModelRequest,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    TurnEnded,
    UsageUpdated,
)
from .tools import ServerTool, ToolContext, ToolOutcome, run_tool
from .transcript import TokenUsage, ToolCallBlock, TranscriptBuilder

log = logging.getLogger("runwire.stepper")

INTERRUPTED = ToolOutcome({"error": "interrupted: the tool call was cut off before it returned"}, is_error=True)


@dataclass(frozen=True)
class StepEnded:
    chunk: StepEndChunk


@dataclass(frozen=True)
class Suspended:
    """The run waits for its client: these actions are pending."""

    actions: list[PendingAction]


StepperEvent = TextDelta | ToolUseChunk | ToolResultChunk | StepEnded | InterruptedChunk | TokenUsage | Suspended


@dataclass(frozen=True)
class ModelRetryPolicy:
    """How a model call that failed is tried again: overloaded, rate limited, a server error or a
    stream cut off mid-answer (the next attempt continues the text written so far), with
    exponential backoff and jitter, or after the provider's retry-after; never past the deadline."""

    max_attempts: int = 3
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, error: ModelError, attempt: int, *, now: float, deadline: float) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None: the error is final."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        backoff = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        wait = error.retry_after if error.retry_after is not None else backoff * (0.5 + self.jitter() / 2)
        return wait if now + wait < deadline else None


@dataclass
class _ModelCall:
    """What one attempt at a model call produced before it ended or failed."""

    usage: TokenUsage
    calls: list[ToolCallBlock] = field(default_factory=list)
    reported: bool = False


def build_system_prompt(agent: AgentDefinition, request: RunRequest) -> str:
    parts = [agent.system_prompt]
    if request.agent_instructions:
        parts.append(request.agent_instructions)
    if request.context:
        parts.append("Context supplied by the client (JSON): " + json.dumps(request.context, sort_keys=True))
    return "\n\n".join(parts)


@dataclass(frozen=True)
class RunTools:
    """The tools one run may call: the server's (some behind approval) and the client's."""

    server: dict[str, ServerTool]
    client: dict[str, ToolSpec]
    approval_required: frozenset[str]

    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self.server.values()] + list(self.client.values())

    def executor(self, name: str) -> str:
        return "client" if name in self.client else "server"


def model_request(agent: AgentDefinition, request: RunRequest, tools: RunTools, *, default_model: str) -> ModelRequest:
    """Everything about the run's model calls but the messages, which grow step by step."""
    settings = request.settings
    return ModelRequest(
        model=(settings.model if settings and settings.model else None) or agent.model or default_model,
        system=build_system_prompt(agent, request),
        messages=[],
        tools=tools.specs(),
        max_tokens=(settings.max_tokens if settings and settings.max_tokens else 4096),
        temperature=settings.temperature if settings else None,
        top_p=settings.top_p if settings else None,
        stop_sequences=settings.stop_sequences if settings else None,
    )


class Stepper:
    def __init__(
        self,
        provider: ModelProvider,
        tools: RunTools,
        base_request: ModelRequest,
        *,
        max_steps: int,
        clock: Clock,
        retries: ModelRetryPolicy | None = None,
        on_retry: Callable[[str], None] = lambda code: None,
    ) -> None:
        self._provider = provider
        self._tools = tools
        self._base = base_request
        self._max_steps = max_steps
        self._clock = clock
        self._retries = retries or ModelRetryPolicy()
        self._on_retry = on_retry

    def run(
        self,
        run: RunRecord,
        transcript: TranscriptBuilder,
        emit: Callable[[StepperEvent], None],
        cancellation: Cancellation,
        *,
        deadline: float,
    ) -> None:
        context = ToolContext(
            org_id=run.org_id, user_id=run.user_id, run_id=run.run_id,
            conversation_id=run.request.conversation_id, deadline=deadline, cancellation=cancellation,
        )
        out = _Emitter(emit, transcript)
        waiting = self._settle(run, transcript.unanswered_calls(), out, context)
        if waiting:
            out.suspend(waiting)
            return
        while transcript.steps < self._max_steps and not cancellation.cancelled:
            calls = self._step(transcript, out, cancellation, deadline)
            if not calls or cancellation.cancelled:
                return
            waiting = self._run_server_tools(run, calls, out, context)
            if waiting:
                out.suspend(waiting)
                return

    # -------------------------------------------------------------------------------------------
    def _step(
        self, transcript: TranscriptBuilder, out: _Emitter, cancellation: Cancellation, deadline: float
    ) -> list[ToolCallBlock]:
        """One model call, tried again on transient failures. Returns the tool calls it asked for
        (none: the model answered)."""
        attempt = 1
        while True:
            call = _ModelCall(TokenUsage(self._base.model))
            try:
                return self._call_model(call, transcript, out, cancellation)
            except ModelError as exc:
                if call.calls:
                    # Cut off after it asked for tools: the step ends with them (they run next);
                    # a continuation would leave those calls without results.
                    out.step_end(self._step_end(transcript, call.usage))
                    return call.calls
                if call.reported:
                    out.interrupted(InterruptedChunk(reason=exc.code, model=call.usage.model,
                                                     input_tokens=call.usage.input_tokens,
                                                     output_tokens=call.usage.output_tokens))
                delay = None if cancellation.cancelled else self._retries.delay(
                    exc, attempt, now=self._clock(), deadline=deadline)
                if delay is None:
                    raise
                log.warning("model call failed (%s); attempt %d in %.1f s", exc.code, attempt + 1, delay)
                self._on_retry(exc.code)
                attempt += 1
                if cancellation.wait(delay):
                    return []

    def _call_model(
        self, call: _ModelCall, transcript: TranscriptBuilder, out: _Emitter, cancellation: Cancellation
    ) -> list[ToolCallBlock]:
        # The transcript so far: after a cut-off attempt, it ends with that attempt's text, which
        # the provider continues (core/continuation.py).
        request = ModelRequest(**{**self._base.__dict__, "messages": transcript.transcript()})
        earlier = transcript.usage
        turn: TurnEnded | None = None
        for event in self._provider.stream(request, cancellation):
            if isinstance(event, TextDelta):
                out.text(event)
            elif isinstance(event, ToolCallRequested):
                chunk = ToolUseChunk(id=event.id, name=event.name, input=event.input,
                                     executor=self._tools.executor(event.name))  # type: ignore[arg-type]
                out.chunk(chunk)
                call.calls.append(ToolCallBlock(chunk.id, chunk.name, chunk.input, chunk.executor,
                                                needs_approval=self._needs_approval(chunk)))
            elif isinstance(event, UsageUpdated):
                call.usage = TokenUsage(event.model, event.input_tokens, event.output_tokens)
                call.reported = True
                total = (earlier or TokenUsage(event.model)).plus(event.model, event.input_tokens, event.output_tokens)
                out.emit(total)  # the run's usage so far, every step of it
            elif isinstance(event, TurnEnded):
                turn = event
        if cancellation.cancelled or turn is None:
            return []
        out.step_end(self._step_end(transcript, call.usage))
        return call.calls if turn.stop_reason == "tool_use" else []

    @staticmethod
    def _step_end(transcript: TranscriptBuilder, usage: TokenUsage) -> StepEndChunk:
        return StepEndChunk(step=transcript.steps + 1, model=usage.model,
                            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)

    def _needs_approval(self, chunk: ToolUseChunk) -> bool:
        return chunk.executor == "server" and chunk.name in self._tools.approval_required

    def _run_server_tools(
        self, run: RunRecord, calls: list[ToolCallBlock], out: _Emitter, context: ToolContext
    ) -> list[PendingAction]:
        """Run the calls the server may run now; return those that wait for the client, in order."""
        waiting: list[PendingAction] = []
        for call in calls:
            if context.cancellation.cancelled:
                return []  # cancelled, or another worker holds the run now: no more tools
            if self._gated(call):
                waiting.append(pending_action(run.run_id, call))
                continue
            out.result(call.id, self._call(call.name, call.input, context))
        return waiting

    def _gated(self, call: ToolCallBlock) -> bool:
        """Waits for the client: a client tool, or a server tool behind approval."""
        return call.executor == "client" or call.needs_approval or call.name in self._tools.approval_required

    def _settle(
        self, run: RunRecord, unanswered: list[ToolCallBlock], out: _Emitter, context: ToolContext
    ) -> list[PendingAction]:
        """Results for the calls the last worker left open: from the client's answers, or — when it
        died before it could ask — a wait for them now. Returns the actions to wait for."""
        answers = {a.tool_call_id: a for a in run.actions or [] if a.answered}
        waiting: list[PendingAction] = []
        for call in unanswered:
            if context.cancellation.cancelled:
                return []
            pending = answers.get(call.id)
            if pending is not None:
                out.result(call.id, self._answer(pending, context, retried=run.takeovers > 0))
            elif self._gated(call):
                waiting.append(pending_action(run.run_id, call))
            else:
                out.result(call.id, self._call(call.name, call.input, context) if self._rerunnable(call.name)
                           else INTERRUPTED)
        return waiting

    def _rerunnable(self, name: str) -> bool:
        """A tool call cut off before its result was logged may have run: again only if that is safe."""
        tool = self._tools.server.get(name)
        return tool is not None and tool.idempotent

    def _answer(self, pending: PendingAction, context: ToolContext, *, retried: bool) -> ToolOutcome:
        """`retried`: a worker before this one on this stretch may have run an approved tool already."""
        if pending.output is not None:
            return ToolOutcome(pending.output.output, pending.output.is_error)
        decision = pending.decision
        assert decision is not None and isinstance(pending.action, ApprovalAction)
        if not decision.approved:
            return ToolOutcome(denial(decision.reason or "the user denied this tool call"), is_error=True)
        if retried and not self._rerunnable(pending.action.name):
            return INTERRUPTED
        # The input frozen when approval was asked, never anything sent with the answer.
        return self._call(pending.action.name, pending.action.input, context)

    def _call(self, name: str, arguments: dict[str, Any], context: ToolContext) -> ToolOutcome:
        return run_tool(self._tools.server.get(name), name, arguments, context, self._clock)


@dataclass
class _Emitter:
    """Emits to the writer and folds the same chunk into the transcript."""

    emit: Callable[[StepperEvent], None]
    transcript: TranscriptBuilder

    def text(self, delta: TextDelta) -> None:
        self.transcript.add_text(delta.text)
        self.emit(delta)

    def chunk(self, chunk: ToolUseChunk) -> None:
        self.transcript.add(chunk)
        self.emit(chunk)

    def step_end(self, chunk: StepEndChunk) -> None:
        self.transcript.add(chunk)
        self.emit(StepEnded(chunk))

    def interrupted(self, chunk: InterruptedChunk) -> None:
        self.transcript.add(chunk)
        self.emit(chunk)

    def suspend(self, actions: list[PendingAction]) -> None:
        self.transcript.wait_for([a.action for a in actions])
        self.emit(Suspended(actions))

    def result(self, tool_call_id: str, outcome: ToolOutcome) -> None:
        chunk = ToolResultChunk(id=tool_call_id, output=outcome.output, is_error=outcome.is_error)
        self.transcript.add(chunk)
        self.emit(chunk)
