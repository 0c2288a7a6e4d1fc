"""The calculator tool answers exactly, and refuses what would stall a worker or break JSON."""

import threading
import time

import pytest

from runwire.core.cancellation import CancellationToken
from runwire.core.ports import ToolSpec
from runwire.core.tools import ServerTool, ToolContext, calculator_tool, evaluate_arithmetic, run_tool
from runwire.errors import ToolError


@pytest.mark.parametrize(("expression", "value"), [
    ("17 * 23", 391), ("(12 + 30) * 2", 84), ("7 / 2", 3.5), ("7 // 2", 3), ("2 ** 10", 1024),
    ("-3 ** 2", -9), ("2 ** -1", 0.5), ("10 % 4", 2),
])
def test_arithmetic_is_exact(expression, value):
    assert evaluate_arithmetic(expression) == value


@pytest.mark.parametrize("expression", [
    "(((9**64)**64)**64)**64",  # would take seconds of CPU under the GIL, then more
    "(99**64)**64",  # an int too long to read back from JSON
    "(10.0**64)**64",  # float overflow
    "10**101", "1/0", "0 ** -1", "(-8) ** 0.5", "__import__('os')", "x + 1", "1 +", "9" * 201,
])
def test_what_cannot_be_answered_safely_is_a_tool_error(expression):
    with pytest.raises(ToolError):
        evaluate_arithmetic(expression)


def tool_context(deadline=None):
    return ToolContext(org_id="acme", user_id="u1", run_id="run_1", conversation_id=None,
                       deadline=deadline or time.time() + 30, cancellation=CancellationToken())


def test_the_tool_returns_its_error_to_the_model_instead_of_raising_elsewhere():
    tool = calculator_tool()
    assert tool.run({"expression": "6*7"}, tool_context()) == {"expression": "6*7", "result": 42}
    with pytest.raises(ToolError):
        tool.run({"expression": 5}, tool_context())
    outcome = run_tool(tool, "calculator", {"expression": "1/0"}, tool_context(), time.time)
    assert outcome.is_error and outcome.output == {"error": "division by zero"}


def test_an_unexpected_exception_in_a_tool_becomes_an_error_result():
    def broken(arguments, context):
        raise KeyError("boom")

    tool = ServerTool(ToolSpec("broken", "", {}), broken)
    outcome = run_tool(tool, "broken", {}, tool_context(), time.time)
    assert outcome.is_error and "failed unexpectedly" in outcome.output["error"]


def test_a_tool_that_outlives_its_timeout_returns_a_timeout_error():
    release = threading.Event()

    def slow(arguments, context):
        release.wait(5)
        return {"late": True}

    tool = ServerTool(ToolSpec("slow", "", {}), slow, timeout_seconds=0.05)
    outcome = run_tool(tool, "slow", {}, tool_context(), time.time)
    release.set()
    assert outcome.is_error and "did not answer" in outcome.output["error"]


def test_a_tool_sees_who_calls_it():
    seen = []
    tool = ServerTool(ToolSpec("who", "", {}), lambda arguments, context: seen.append(context) or "ok")
    run_tool(tool, "who", {}, tool_context(), time.time)
    assert seen[0].org_id == "acme" and seen[0].run_id == "run_1"
