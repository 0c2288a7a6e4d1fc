"""An offline, deterministic model: the default for `make dev`, the tests and the benchmark.

It streams realistic token-by-token text with a delay between tokens, calls the `calculator`
tool when the task contains arithmetic (and the tool is offered), calls `current_time` when
asked for the time or date, calls a client tool (`clientMcpTools`) when the task names it, and
answers from the conversation history when asked what it was told ("What is my name?" after
"My name is Alex."). Every tool that matches is called in the same step, so a task can ask for
several at once ("What is 6*7? Use get_location too."). A tool that needs approval is called the
same way: pass `approvalRequired: ["calculator"]` with an arithmetic task.

A directive in the task steers it, for tests and benchmarks:

    [[scripted tokens=100 delay_ms=20 stamp=1 stall=2 fail=overloaded after=5]]

- `tokens=N`     answer with exactly N numbered tokens (" 1", " 2", …) instead of prose
- `stamp=1`      with `tokens`, each token is " <n>@<epoch ms when emitted>" (lag measurement)
- `delay_ms=D`   the delay between tokens (default: the provider's setting)
- `stall=S`      wait S seconds before the first token (a slow model)
- `fail=KIND`    after `after=N` tokens fail as `overloaded`, `unavailable` or `interrupted`

A continuation request (the transcript ends with the assistant's cut-off text) streams only the
rest of the reply it would have given without that text: the reply after its longest common
prefix with the text shown (trailing whitespace aside), joined by `ContinuationJoiner`. `after=N`
counts tokens of the whole reply, so an answer cut by `fail` after N tokens is continued to its
end; with `after=0` every call fails (nothing was shown to continue from).
"""

from __future__ import annotations

import json
import math
import os.path
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ..core.continuation import ContinuationJoiner, partial_reply, prefill_text, without_partial_reply
from ..core.ports import (
    Cancellation,
    Clock,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    TurnEnded,
    UsageUpdated,
)
from ..core.transcript import Message, ToolResultBlock
from ..errors import ModelOverloadedError, ModelStreamInterruptedError, ModelUnavailableError

MODEL_NAME = "scripted-1"
_DIRECTIVE = re.compile(r"\[\[scripted([^\]]*)\]\]")
_ARITHMETIC = re.compile(r"(?<![\w.])(\(?-?\d+(?:\.\d+)?(?:\s*(?:\*\*|//|[-+*/%])\s*\(?-?\d+(?:\.\d+)?\)?)+\)?)")
_NAME_TOLD = re.compile(r"\bmy name is ([A-Z][\w-]*)", re.IGNORECASE)
_TOKEN = re.compile(r"\s*\S+")
_STAMP = re.compile(r"@\d+")
_FAILURES = {
    "overloaded": lambda: ModelOverloadedError("The model provider is overloaded (scripted failure); try again shortly."),
    "unavailable": lambda: ModelUnavailableError("The model provider returned a server error (scripted failure)."),
    "interrupted": lambda: ModelStreamInterruptedError("The model's stream broke off mid-answer (scripted failure)."),
}


def _failure_index(directive: dict[str, str], first_index: int) -> int | None:
    """The reply's token index at which this call fails, if it does: a call that continues from
    the failure point (or past it) is the retry that gets through."""
    if "fail" not in directive:
        return None
    after = int(directive.get("after", "0"))
    return after if after > first_index or first_index == 0 else None


def _tokens_after(tokens: list[str], shown: str) -> tuple[int, list[str]]:
    """(how many of `tokens` the client has seen whole, the pieces still to stream): the reply
    after its longest common prefix with `shown`, the rest of a token cut in two first."""
    reply = "".join(tokens)
    common = len(os.path.commonprefix([reply, shown]))
    seen = consumed = 0
    for token in tokens:
        if consumed + len(token) > common:
            break
        consumed += len(token)
        seen += 1
    rest = tokens[seen:]
    if rest and common > consumed:
        rest = [rest[0][common - consumed :], *rest[1:]]
    return seen, rest


def _text_of(message: Message) -> str:
    parts = [message.text] if message.text else []
    parts.extend(result.text_for_model() for result in message.tool_results)
    return " ".join(parts)


def _is_tool_result(message: Message) -> bool:
    return bool(message.tool_results)


def _task_text(messages: list[Message]) -> str:
    """The user's own latest turn (not a tool result sent back in the user role)."""
    for message in reversed(messages):
        if message.role == "user" and not _is_tool_result(message):
            return message.text
    return ""


def _input_for(tool: ToolSpec, task: str) -> dict[str, Any]:
    """A client tool's input: each required string property gets the task's text."""
    properties = tool.input_schema.get("properties", {}) if isinstance(tool.input_schema, dict) else {}
    required = tool.input_schema.get("required", []) if isinstance(tool.input_schema, dict) else []
    return {
        name: task for name in required
        if isinstance(properties.get(name), dict) and properties[name].get("type") == "string"
    }


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
        prompt_text = request.system + " ".join(_text_of(m) for m in request.messages)
        input_tokens = estimate_tokens(prompt_text)
        yield UsageUpdated(MODEL_NAME, input_tokens, 0)

        if "stall" in directive and cancellation.wait(float(directive["stall"])):
            return

        partial = partial_reply(request.messages)
        if partial is not None:
            yield from self._continue(request, task, directive, partial, input_tokens, delay, cancellation)
            return
        tool_calls = self._tool_calls(request, task)
        if tool_calls:
            yield from tool_calls
            output_tokens = sum(estimate_tokens(json.dumps(call.input)) for call in tool_calls)
            yield UsageUpdated(MODEL_NAME, input_tokens, output_tokens)
            yield TurnEnded(
                "tool_use",
                [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input} for call in tool_calls],
            )
            return

        tokens = self._answer_tokens(request, task, directive)
        yield from self._stream_tokens(tokens, 0, directive, input_tokens, delay, cancellation)

    def _continue(
        self,
        request: ModelRequest,
        task: str,
        directive: dict[str, str],
        partial: str,
        input_tokens: int,
        delay: float,
        cancellation: Cancellation,
    ) -> Iterator[ModelEvent]:
        """The rest of the reply the call that was cut off would have given."""
        answered = replace(request, messages=without_partial_reply(request.messages))
        tokens = self._answer_tokens(answered, task, directive)
        shown = prefill_text(_STAMP.sub("", partial) if directive.get("stamp") == "1" else partial)
        seen, rest = _tokens_after(tokens, shown)
        joiner = ContinuationJoiner(partial)
        pieces = [joiner.feed(piece) for piece in rest] or [""]  # one piece per token: indices stay the reply's
        pieces[-1] += joiner.finish()
        yield from self._stream_tokens(pieces, seen, directive, input_tokens, delay, cancellation)

    def _stream_tokens(
        self,
        tokens: list[str],
        first_index: int,
        directive: dict[str, str],
        input_tokens: int,
        delay: float,
        cancellation: Cancellation,
    ) -> Iterator[ModelEvent]:
        """Stream `tokens`, the reply's from `first_index` on, failing as the directive says."""
        fail_at = _failure_index(directive, first_index)
        emitted: list[str] = []
        for index, token in enumerate(tokens, start=first_index):
            if index == fail_at:
                raise _FAILURES.get(directive["fail"], _FAILURES["unavailable"])()
            if emitted and delay and cancellation.wait(delay):
                return
            if cancellation.cancelled:
                return
            if not token:
                continue
            if directive.get("stamp") == "1":
                token = f"{token}@{int(self._clock() * 1000)}"
            emitted.append(token)
            yield TextDelta(token)
            yield UsageUpdated(MODEL_NAME, input_tokens, len(emitted))
        if fail_at is not None:  # the reply was shorter than `after`: it fails at its end
            raise _FAILURES.get(directive["fail"], _FAILURES["unavailable"])()
        yield TurnEnded("end_turn", [{"type": "text", "text": "".join(emitted)}])

    # -------------------------------------------------------------------------------------------
    def _tool_calls(self, request: ModelRequest, task: str) -> list[ToolCallRequested]:
        if _is_tool_result(request.messages[-1]):
            return []  # the tools have answered: now reply in prose
        step = sum(1 for m in request.messages if m.role == "assistant") + 1
        plain = _DIRECTIVE.sub("", task)
        wanted: list[tuple[str, dict[str, Any]]] = []
        for tool in request.tools:
            if tool.name in ("calculator", "current_time"):
                continue
            if re.search(rf"(?<![\w.-]){re.escape(tool.name)}(?![\w-])", plain):
                wanted.append((tool.name, _input_for(tool, plain)))
        offered = {tool.name for tool in request.tools}
        match = _ARITHMETIC.search(plain)
        if "calculator" in offered and match:
            wanted.append(("calculator", {"expression": match.group(1).strip()}))
        if "current_time" in offered and re.search(r"\bwhat (time|day|date)\b|\btoday\b", task, re.IGNORECASE):
            wanted.append(("current_time", {}))
        suffixes = [""] if len(wanted) == 1 else [f"_{i}" for i in range(1, len(wanted) + 1)]
        return [
            ToolCallRequested(f"toolu_scripted_{step}{suffix}", name, arguments)
            for (name, arguments), suffix in zip(wanted, suffixes, strict=True)
        ]

    def _answer_tokens(self, request: ModelRequest, task: str, directive: dict[str, str]) -> list[str]:
        if "tokens" in directive:
            return [f" {n}" for n in range(1, int(directive["tokens"]) + 1)]
        if _is_tool_result(request.messages[-1]):
            answers = [self._tool_answer(result) for result in request.messages[-1].tool_results]
            return _TOKEN.findall(" ".join(answers))
        return _TOKEN.findall(self._prose(request, _DIRECTIVE.sub("", task).strip()))

    @staticmethod
    def _tool_answer(result: ToolResultBlock) -> str:
        output = result.output
        if result.denied:
            return f"I did not run that tool: {result.text_for_model()}."
        if result.is_error:
            error = output.get("error", "the tool failed") if isinstance(output, dict) else output
            return f"I could not work that out: {error}."
        if isinstance(output, dict) and "result" in output and "expression" in output:
            return f"{output['expression']} = {output['result']}. I used the calculator to get an exact answer."
        if isinstance(output, dict) and "utc" in output:
            return f"It is {output['weekday']}, {output['utc']} (UTC)."
        return "The tool returned: " + json.dumps(output)

    @staticmethod
    def _prose(request: ModelRequest, task: str) -> str:
        history = " ".join(_text_of(m) for m in request.messages[:-1] if m.role == "user")
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
