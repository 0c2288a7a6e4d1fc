"""The agent loop: call the model, run the tools it asks for, call it again, until it answers.

Runs on the worker's producer thread and reports through `emit`; it never writes to storage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ToolError
from .agents import AgentDefinition
from .models import HistoryMessage, RunRequest
from .ports import Cancellation, ModelProvider, ModelRequest, TextDelta, ToolCallRequested, TurnEnded, UsageUpdated
from .tools import ServerTool


@dataclass(frozen=True)
class ToolCompleted:
    id: str
    name: str
    output: Any
    is_error: bool = False


@dataclass(frozen=True)
class RunUsage:
    """Cumulative over every model call of the run."""

    model: str
    input_tokens: int
    output_tokens: int


AgentEvent = TextDelta | ToolCallRequested | ToolCompleted | RunUsage


def build_system_prompt(agent: AgentDefinition, request: RunRequest) -> str:
    parts = [agent.system_prompt]
    if request.agent_instructions:
        parts.append(request.agent_instructions)
    if request.context:
        parts.append("Context supplied by the client (JSON): " + json.dumps(request.context, sort_keys=True))
    return "\n\n".join(parts)


def build_user_content(request: RunRequest) -> str | list[dict[str, Any]]:
    if not request.images:
        return request.task
    blocks: list[dict[str, Any]] = []
    for image in request.images:
        if image.data is not None:
            source = {"type": "base64", "media_type": image.mime_type, "data": image.data}
        else:
            source = {"type": "url", "url": image.url}
        blocks.append({"type": "image", "source": source})
    blocks.append({"type": "text", "text": request.task})
    return blocks


def build_model_request(
    agent: AgentDefinition,
    request: RunRequest,
    *,
    default_model: str,
    history: list[HistoryMessage],
    tools: list[ServerTool],
) -> ModelRequest:
    settings = request.settings
    messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in history]
    messages.append({"role": "user", "content": build_user_content(request)})
    return ModelRequest(
        model=(settings.model if settings and settings.model else None) or agent.model or default_model,
        system=build_system_prompt(agent, request),
        messages=messages,
        tools=[tool.spec for tool in tools],
        max_tokens=(settings.max_tokens if settings and settings.max_tokens else 4096),
        temperature=settings.temperature if settings else None,
        top_p=settings.top_p if settings else None,
        stop_sequences=settings.stop_sequences if settings else None,
    )


class AgentLoop:
    def __init__(self, provider: ModelProvider, tools: list[ServerTool], *, max_steps: int) -> None:
        self._provider = provider
        self._tools = {tool.name: tool for tool in tools}
        self._max_steps = max_steps

    def run(self, request: ModelRequest, emit: Callable[[AgentEvent], None], cancellation: Cancellation) -> None:
        messages = list(request.messages)
        total_in = total_out = 0
        for _ in range(self._max_steps):
            if cancellation.cancelled:
                return
            calls: list[ToolCallRequested] = []
            turn: TurnEnded | None = None
            call_in = call_out = 0
            step_request = ModelRequest(**{**request.__dict__, "messages": messages})
            for event in self._provider.stream(step_request, cancellation):
                if isinstance(event, TextDelta):
                    emit(event)
                elif isinstance(event, ToolCallRequested):
                    calls.append(event)
                    emit(event)
                elif isinstance(event, UsageUpdated):
                    call_in, call_out = event.input_tokens, event.output_tokens
                    emit(RunUsage(event.model, total_in + call_in, total_out + call_out))
                elif isinstance(event, TurnEnded):
                    turn = event
            total_in += call_in
            total_out += call_out
            if cancellation.cancelled or turn is None or turn.stop_reason != "tool_use" or not calls:
                return
            messages.append({"role": "assistant", "content": turn.content})
            messages.append({"role": "user", "content": [self._run_tool(call, emit) for call in calls]})

    def _run_tool(self, call: ToolCallRequested, emit: Callable[[AgentEvent], None]) -> dict[str, Any]:
        tool = self._tools.get(call.name)
        try:
            if tool is None:
                raise ToolError(f"no tool named {call.name!r} is available to this agent")
            output, is_error = tool.run(call.input), False
        except ToolError as exc:
            output, is_error = {"error": exc.message}, True
        emit(ToolCompleted(call.id, call.name, output, is_error))
        return {
            "type": "tool_result",
            "tool_use_id": call.id,
            "content": json.dumps(output),
            "is_error": is_error,
        }
