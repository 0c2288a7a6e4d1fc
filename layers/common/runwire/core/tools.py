"""Server-side tools the agents may call, and how one call runs.

Each tool validates its own input and returns JSON-able output. A tool receives a `ToolContext`
(who runs it, in which run and conversation, the run's deadline and its cancellation) and runs
under a timeout. A failing tool — a `ToolError`, an unexpected exception, a timeout — returns an
error result to the model rather than failing the run (the model can recover, as with any tool
error).
"""

from __future__ import annotations

import ast
import logging
import math
import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ToolError
from .ports import Cancellation, Clock, ToolSpec

log = logging.getLogger("runwire.tools")


@dataclass(frozen=True)
class ToolContext:
    """What a tool may know about the call it serves."""

    org_id: str
    user_id: str
    run_id: str
    conversation_id: str | None
    deadline: float
    """Epoch seconds: the run's deadline; a tool should not outlive it."""
    cancellation: Cancellation


@dataclass(frozen=True)
class ServerTool:
    spec: ToolSpec
    run: Callable[[dict[str, Any], ToolContext], Any]
    timeout_seconds: float = 30.0
    idempotent: bool = False
    """Safe to run again with the same input (a call whose result was never logged may be re-run)."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class ToolOutcome:
    output: Any
    is_error: bool = False


def run_tool(tool: ServerTool | None, name: str, arguments: dict[str, Any], context: ToolContext,
             clock: Clock) -> ToolOutcome:
    """One call, bounded by the tool's timeout and the run's deadline; never raises."""
    if tool is None:
        return ToolOutcome({"error": f"no tool named {name!r} is available to this agent"}, is_error=True)
    result: list[ToolOutcome] = []

    def call() -> None:
        try:
            result.append(ToolOutcome(tool.run(arguments, context)))
        except ToolError as exc:
            result.append(ToolOutcome({"error": exc.message}, is_error=True))
        except Exception:
            log.exception("tool %s failed unexpectedly", name, extra={"run_id": context.run_id})
            result.append(ToolOutcome({"error": f"the tool {name!r} failed unexpectedly"}, is_error=True))

    timeout = max(0.0, min(tool.timeout_seconds, context.deadline - clock()))
    worker = threading.Thread(target=call, name=f"tool-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        return ToolOutcome({"error": f"the tool {name!r} did not answer within {timeout:.0f} s"}, is_error=True)
    return result[0]


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


MAX_MAGNITUDE = 10**100
"""Every intermediate result is bounded: a nested power could otherwise hold the worker for seconds,
and an integer past 4,300 digits cannot even be read back from JSON."""


def _bounded(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise ToolError("the result is too large (more than 100 digits)")
    return value


def _power(base: int | float, exponent: int | float) -> int | float:
    if base not in (0, 1, -1) and exponent > 0 and exponent * math.log10(abs(base)) > 100:
        raise ToolError("the result is too large (more than 100 digits)")
    if base == 0 and exponent < 0:
        raise ToolError("division by zero")
    result = base**exponent
    if isinstance(result, complex):
        raise ToolError("the result is not a real number")
    return result


def evaluate_arithmetic(expression: str) -> int | float:
    """Evaluate + - * / // % ** and parentheses over numbers; nothing else is allowed."""
    if len(expression) > 200:
        raise ToolError("expression is longer than 200 characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from exc

    def visit(node: ast.AST) -> int | float:
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return _bounded(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = visit(node.left), visit(node.right)
            try:
                if isinstance(node.op, ast.Pow):
                    return _bounded(_power(left, right))
                return _bounded(_BINARY[type(node.op)](left, right))
            except ZeroDivisionError as exc:
                raise ToolError("division by zero") from exc
            except OverflowError as exc:
                raise ToolError("the result is too large") from exc
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](visit(node.operand))  # type: ignore[no-any-return]
        raise ToolError(f"unsupported element in expression: {ast.dump(node)[:40]}")

    return visit(tree)


def calculator_tool() -> ServerTool:
    def run(arguments: dict[str, Any], context: ToolContext) -> Any:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ToolError("'expression' must be a string")
        return {"expression": expression, "result": evaluate_arithmetic(expression)}

    return ServerTool(
        ToolSpec(
            name="calculator",
            description="Evaluate an arithmetic expression exactly (+ - * / // % ** and parentheses).",
            input_schema={
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "e.g. (17 * 23) + 4"}},
                "required": ["expression"],
            },
        ),
        run,
        timeout_seconds=5.0,
        idempotent=True,
    )


def clock_tool(clock: Clock) -> ServerTool:
    def run(arguments: dict[str, Any], context: ToolContext) -> Any:
        now = datetime.fromtimestamp(clock(), tz=UTC)
        return {"utc": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}

    return ServerTool(
        ToolSpec(
            name="current_time",
            description="The current date and time in UTC.",
            input_schema={"type": "object", "properties": {}},
        ),
        run,
        timeout_seconds=5.0,
        idempotent=True,
    )


class ToolRegistry:
    def __init__(self, tools: list[ServerTool]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> ServerTool | None:
        return self._tools.get(name)

    def select(self, names: list[str] | None, allowed: list[str] | None) -> list[ServerTool]:
        """The agent's tools (`names`), narrowed by the request's `availableTools` whitelist."""
        chosen = [self._tools[name] for name in (names or []) if name in self._tools]
        if allowed is not None:
            chosen = [tool for tool in chosen if tool.name in allowed]
        return chosen


def default_tools(clock: Clock) -> ToolRegistry:
    return ToolRegistry([calculator_tool(), clock_tool(clock)])
