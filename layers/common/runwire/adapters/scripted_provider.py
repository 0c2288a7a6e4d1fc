"""An offline, deterministic model: the default for `make dev`, the tests and the benchmark.

It streams realistic token-by-token text with a delay between tokens, calls the `calculator`
tool when the task contains arithmetic (and the tool is offered), calls `current_time` when
asked for the time or date, and answers from the conversation history when asked what it was
told ("What is my name?" after "My name is Alex.").

A directive in the task steers it, for tests and benchmarks:

    [[scripted tokens=100 delay_ms=20 stamp=1 stall=2 fail=overloaded after=5]]

- `tokens=N`     answer with exactly N numbered tokens (" 1", " 2", …) instead of prose
- `stamp=1`      with `tokens`, each token is " <n>@<epoch ms when emitted>" (lag measurement)
- `delay_ms=D`   the delay between tokens (default: the provider's setting)
- `stall=S`      wait S seconds before the first token (a slow model)
- `fail=KIND`    after `after=N` tokens fail as `overloaded`, `unavailable` or `interrupted`
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from ..core.ports import (
    Cancellation,
    Clock,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequested,
    TurnEnded,
    UsageUpdated,
)
from ..errors import ModelOverloadedError, ModelStreamInterruptedError, ModelUnavailableError

MODEL_NAME = "scripted-1"
_DIRECTIVE = re.compile(r"\[\[scripted([^\]]*)\]\]")
_ARITHMETIC = re.compile(r"(?<![\w.])(\(?-?\d+(?:\.\d+)?(?:\s*(?:\*\*|//|[-+*/%])\s*\(?-?\d+(?:\.\d+)?\)?)+\)?)")
_NAME_TOLD = re.compile(r"\bmy name is ([A-Z][\w-]*)", re.IGNORECASE)
_TOKEN = re.compile(r"\s*\S+")
_FAILURES = {
    "overloaded": lambda: ModelOverloadedError("The model provider is overloaded (scripted failure); try again shortly."),
    "unavailable": lambda: ModelUnavailableError("The model provider returned a server error (scripted failure)."),
    "interrupted": lambda: ModelStreamInterruptedError("The model's stream broke off mid-answer (scripted failure)."),
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            parts.append(str(block.get("content", "")))
    return " ".join(parts)


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message["content"]
    return not isinstance(content, str) and any(b.get("type") == "tool_result" for b in content)


def _task_text(messages: list[dict[str, Any]]) -> str:
    """The user's own latest turn (not a tool result sent back in the user role)."""
    for message in reversed(messages):
        if message["role"] == "user" and not _is_tool_result(message):
            return _text_of(message["content"])
    return ""


def parse_directive(text: str) -> dict[str, str]:
    match = _DIRECTIVE.search(text)
    if not match:
        return {}
    return dict(pair.split("=", 1) for pair in match.group(1).split() if "=" in pair)


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class ScriptedProvider:
    name = "scripted"

    def __init__(self, clock: Clock, *, token_delay_seconds: float = 0.015) -> None:
        self._clock = clock
        self._delay = token_delay_seconds

    def stream(self, request: ModelRequest, cancellation: Cancellation) -> Iterator[ModelEvent]:
        task = _task_text(request.messages)
        directive = parse_directive(task)
        delay = float(directive.get("delay_ms", self._delay * 1000)) / 1000
        prompt_text = request.system + " ".join(_text_of(m["content"]) for m in request.messages)
        input_tokens = estimate_tokens(prompt_text)
        yield UsageUpdated(MODEL_NAME, input_tokens, 0)

        if "stall" in directive and cancellation.wait(float(directive["stall"])):
            return

        tool_call = self._tool_call(request, task)
        if tool_call is not None:
            yield tool_call
            yield UsageUpdated(MODEL_NAME, input_tokens, estimate_tokens(json.dumps(tool_call.input)))
            yield TurnEnded(
                "tool_use",
                [{"type": "tool_use", "id": tool_call.id, "name": tool_call.name, "input": tool_call.input}],
            )
            return

        tokens = self._answer_tokens(request, task, directive)
        fail_after = int(directive.get("after", "0")) if "fail" in directive else None
        emitted: list[str] = []
        for index, token in enumerate(tokens):
            if fail_after is not None and index >= fail_after:
                break
            if index and delay and cancellation.wait(delay):
                return
            if cancellation.cancelled:
                return
            if directive.get("stamp") == "1":
                token = f"{token}@{int(self._clock() * 1000)}"
            emitted.append(token)
            yield TextDelta(token)
            yield UsageUpdated(MODEL_NAME, input_tokens, len(emitted))
        if fail_after is not None:
            raise _FAILURES.get(directive["fail"], _FAILURES["unavailable"])()
        yield TurnEnded("end_turn", [{"type": "text", "text": "".join(emitted)}])

    # -------------------------------------------------------------------------------------------
    def _tool_call(self, request: ModelRequest, task: str) -> ToolCallRequested | None:
        offered = {tool.name for tool in request.tools}
        if _is_tool_result(request.messages[-1]):
            return None  # the tool has answered: now reply in prose
        call_number = sum(1 for m in request.messages if m["role"] == "assistant") + 1
        match = _ARITHMETIC.search(_DIRECTIVE.sub("", task))
        if "calculator" in offered and match:
            return ToolCallRequested(f"toolu_scripted_{call_number}", "calculator", {"expression": match.group(1).strip()})
        if "current_time" in offered and re.search(r"\bwhat (time|day|date)\b|\btoday\b", task, re.IGNORECASE):
            return ToolCallRequested(f"toolu_scripted_{call_number}", "current_time", {})
        return None

    def _answer_tokens(self, request: ModelRequest, task: str, directive: dict[str, str]) -> list[str]:
        if "tokens" in directive:
            return [f" {n}" for n in range(1, int(directive["tokens"]) + 1)]
        if _is_tool_result(request.messages[-1]):
            result = next(b for b in request.messages[-1]["content"] if b.get("type") == "tool_result")
            return _TOKEN.findall(self._tool_answer(result))
        return _TOKEN.findall(self._prose(request, _DIRECTIVE.sub("", task).strip()))

    @staticmethod
    def _tool_answer(result: dict[str, Any]) -> str:
        try:
            output = json.loads(result.get("content", "{}"))
        except json.JSONDecodeError:
            output = {}
        if result.get("is_error"):
            return f"I could not work that out: {output.get('error', 'the tool failed')}."
        if "result" in output:
            return f"{output['expression']} = {output['result']}. I used the calculator to get an exact answer."
        if "utc" in output:
            return f"It is {output['weekday']}, {output['utc']} (UTC)."
        return "The tool returned: " + json.dumps(output)

    @staticmethod
    def _prose(request: ModelRequest, task: str) -> str:
        history = " ".join(_text_of(m["content"]) for m in request.messages[:-1] if m["role"] == "user")
        if re.search(r"\bwhat(?:'s| is) my name\b", task, re.IGNORECASE):
            told = _NAME_TOLD.findall(history)
            if told:
                return f"Your name is {told[-1]}. You told me earlier in this conversation."
            return "I don't know your name yet. You haven't told me in this conversation."
        told_now = _NAME_TOLD.search(task)
        if told_now:
            return f"Nice to meet you, {told_now.group(1)}. I'll remember that for the rest of our conversation."
        topic = task.rstrip("?.! ")
        if len(topic) > 80:
            topic = topic[:77].rstrip() + "..."
        return (
            f"Here is a short answer about \"{topic}\". "
            "First, pin down what you need and the constraints you are working within. "
            "Second, take the smallest step that shows whether the approach works. "
            "Third, check the result against what you expected, and adjust. "
            "(This reply comes from runwire's offline scripted model; set MODEL_PROVIDER=anthropic for real answers.)"
        )
