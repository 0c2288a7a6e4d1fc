"""Server-side tools the agents may call.

Each tool validates its own input and returns JSON-able output; a failing tool returns an error
result to the model rather than failing the run (the model can recover, as with any tool error).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ToolError
from .ports import Clock, ToolSpec


@dataclass(frozen=True)
class ServerTool:
    spec: ToolSpec
    run: Callable[[dict[str, Any]], Any]

    @property
    def name(self) -> str:
        return self.spec.name


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
    def run(arguments: dict[str, Any]) -> Any:
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
    )


def clock_tool(clock: Clock) -> ServerTool:
    def run(arguments: dict[str, Any]) -> Any:
        now = datetime.fromtimestamp(clock(), tz=UTC)
        return {"utc": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}

    return ServerTool(
        ToolSpec(
            name="current_time",
            description="The current date and time in UTC.",
            input_schema={"type": "object", "properties": {}},
        ),
        run,
    )


class ToolRegistry:
    def __init__(self, tools: list[ServerTool]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    def names(self) -> list[str]:
        return list(self._tools)

    def select(self, names: list[str] | None, allowed: list[str] | None) -> list[ServerTool]:
        """The agent's tools (`names`), narrowed by the request's `availableTools` whitelist."""
        chosen = [self._tools[name] for name in (names or []) if name in self._tools]
        if allowed is not None:
            chosen = [tool for tool in chosen if tool.name in allowed]
        return chosen


def default_tools(clock: Clock) -> ToolRegistry:
    return ToolRegistry([calculator_tool(), clock_tool(clock)])
