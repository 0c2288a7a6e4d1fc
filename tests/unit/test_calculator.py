"""The calculator tool answers exactly, and refuses what would stall a worker or break JSON."""

import pytest

from runwire.core.tools import calculator_tool, evaluate_arithmetic
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


def test_the_tool_returns_its_error_to_the_model_instead_of_raising_elsewhere():
    tool = calculator_tool()
    assert tool.run({"expression": "6*7"}) == {"expression": "6*7", "result": 42}
    with pytest.raises(ToolError):
        tool.run({"expression": 5})
