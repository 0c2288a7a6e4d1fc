"""What useChat's own helpers decide about the messages our UI message stream builds: a finished run
must never look like a tool round waiting to be sent back (useChat would re-post it for ever)."""

from __future__ import annotations

import json
import subprocess

import pytest

from runwire.core.models import EndChunk, RunStatus, TextChunk, ToolResultChunk, ToolUseChunk
from runwire.formats.ui_message_stream import UI_MESSAGE_STREAM

from ..unit.test_wire_formats import a_run, render, stored_run
from .test_js_clients import JS, missing_js_tooling, require

pytestmark = pytest.mark.integration


def use_chat_helpers_on(body: bytes) -> dict:
    require(missing_js_tooling())
    result = subprocess.run(["node", "ui_message_of.mjs"], input=body, cwd=JS, capture_output=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.CANCELLED, RunStatus.FAILED])
def test_a_run_that_ends_right_after_its_tool_results_is_not_sent_again(status):
    # The step limit, a cancel or a failure can end a run before the model speaks after its tools.
    chunks = stored_run(
        ToolUseChunk(id="t1", name="calculator", input={"expression": "1+1"}),
        ToolResultChunk(id="t1", output={"result": 2}),
        EndChunk(status=status),
    )
    decided = use_chat_helpers_on(render(UI_MESSAGE_STREAM, a_run(), chunks))
    assert "tool-calculator" in decided["partTypes"]
    assert decided["completeWithToolCalls"] is False
    assert decided["completeWithApprovalResponses"] is False


def test_a_run_that_answered_after_its_tools_is_not_sent_again():
    chunks = stored_run(
        ToolUseChunk(id="t1", name="calculator", input={"expression": "1+1"}),
        ToolResultChunk(id="t1", output={"result": 2}),
        TextChunk(text="It is 2."),
        EndChunk(status=RunStatus.SUCCEEDED),
    )
    assert use_chat_helpers_on(render(UI_MESSAGE_STREAM, a_run(), chunks))["completeWithToolCalls"] is False


def test_the_helper_would_send_a_finished_tool_round_again_which_is_why_the_end_has_its_own_step():
    # The counter-check: cut our body before its final empty step and the helper says "send again".
    chunks = stored_run(
        ToolUseChunk(id="t1", name="calculator", input={"expression": "1+1"}),
        ToolResultChunk(id="t1", output={"result": 2}),
        EndChunk(status=RunStatus.SUCCEEDED),
    )
    body = render(UI_MESSAGE_STREAM, a_run(), chunks)
    events = body.split(b"\n\n")
    start_steps = [i for i, e in enumerate(events) if b'"start-step"' in e]
    without_last_step = b"\n\n".join(events[: start_steps[-1]] + events[start_steps[-1] + 2:])
    assert use_chat_helpers_on(without_last_step)["completeWithToolCalls"] is True
