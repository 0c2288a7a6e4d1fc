"""Golden bytes and request adapters for the client-surface formats (seeds 001, 002, 003).

Seed 001's byte strings were checked against the AI SDK client itself (npm `ai` 6.0.322 and
7.0.173: `AbstractChat` over `DefaultChatTransport`'s parser, and `readUIMessageStream`); the
`resumed` one as the continuation of a chat whose connection dropped after the tool call. Those of
runs that wait for their client (`UI_WAIT_GOLDEN`) were fed through 6.0.322 only (its parser and
`readUIMessageStream`, each continuation read into the waiting message as the client answered it);
`tests/integration/test_ai_sdk_tools.py` runs the same loop live through its `AbstractChat`.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from runwire.core.actions import RunAnswers
from runwire.core.agents import default_catalog
from runwire.core.models import (
    ApprovalAction,
    ApprovalDecision,
    ClientToolAction,
    EndChunk,
    ErrorChunk,
    PendingAction,
    RequiredAction,
    RequiresActionChunk,
    RunError,
    RunRecord,
    RunRequest,
    RunStatus,
    StepEndChunk,
    StoredChunk,
    TextChunk,
    ToolOutput,
    ToolResultChunk,
    ToolUseChunk,
    Usage,
    UsageChunk,
)
from runwire.core.run_service import new_conversation_id
from runwire.errors import InvalidRequestError, NotWaitingError, UnknownAgentError
from runwire.formats import chat_events, content_final, ui_message_stream
from runwire.formats.base import StreamContext, StreamFormat
from runwire.formats.chat_events import CHAT_EVENTS, AgentChatRequest, ChatStreamEvent
from runwire.formats.content_final import CONTENT_FINAL, ChatRunResponse, ContentChatRequest, ContentEvent
from runwire.formats.sse import PING
from runwire.formats.ui_message_stream import (
    UI_MESSAGE_CONTINUATION,
    UI_MESSAGE_STREAM,
    UIChatStreamRequest,
    UIMessageChunk,
    answered_run_id,
    follow_up_answers,
    waiting_conversation,
)

CONVERSATION = "c0ffee00-0000-4000-8000-000000000000"
NEW_CONVERSATION = "0badcafe-0000-4000-8000-000000000000"
CREATED_AT = 1000.0


def a_run(
    *,
    usage: Usage | None = None,
    error: RunError | None = None,
    conversation_id: str | None = CONVERSATION,
    status: RunStatus = RunStatus.RUNNING,
    last_seq: int = 0,
    actions: list[PendingAction] | None = None,
) -> RunRecord:
    return RunRecord(
        run_id="run_abc",
        org_id="org1",
        user_id="user1",
        agent_id="ag_chat",
        status=status,
        request=RunRequest(task="hi", conversation_id=conversation_id),
        created_at=CREATED_AT,
        expires_at=99_999,
        usage=usage,
        error=error,
        last_seq=last_seq,
        actions=actions,
    )


def stored_run(*chunks) -> list[StoredChunk]:
    """Seq 1, 2, …; the first written 0.5 s after the run was created, then one every 0.25 s."""
    return [
        StoredChunk(seq=i + 1, chunk=chunk, written_at=CREATED_AT + 0.5 + i * 0.25) for i, chunk in enumerate(chunks)
    ]


def render(fmt: StreamFormat, run: RunRecord, chunks: list[StoredChunk], resumed_after: int = 0) -> bytes:
    encoder = fmt.encoder(StreamContext(run=run, resumed_after=resumed_after))
    return encoder.open() + b"".join(encoder.encode(c) for c in chunks if c.seq > resumed_after)


def events(body: bytes) -> list[str]:
    """The `data` of each event (every event of these formats is one `data:` line)."""
    blocks = body.decode().split("\n\n")
    assert blocks[-1] == ""
    datas = []
    for block in blocks[:-1]:
        assert block.startswith("data: ") and "\n" not in block
        datas.append(block.removeprefix("data: "))
    return datas


# --- the runs every format must render --------------------------------------------------------
TEXT_ONLY = stored_run(
    TextChunk(text="Hel"),
    TextChunk(text="lo"),
    UsageChunk(model="claude-x", input_tokens=10, output_tokens=2),
    EndChunk(status=RunStatus.SUCCEEDED),
)
TOOL_ROUND_TRIP = stored_run(
    TextChunk(text="Let me add."),
    ToolUseChunk(id="t1", name="calculator", input={"expression": "1+1"}),
    ToolResultChunk(id="t1", output={"result": 2}),
    TextChunk(text="It is 2."),
    UsageChunk(model="claude-x", input_tokens=30, output_tokens=9),
    EndChunk(status=RunStatus.SUCCEEDED),
)
FAILED = stored_run(
    TextChunk(text="Partial"),
    ErrorChunk(code="model_overloaded", message="The model is overloaded."),
    UsageChunk(model="claude-x", input_tokens=5, output_tokens=1),
    EndChunk(status=RunStatus.FAILED),
)
CANCELLED_WITHOUT_USAGE = stored_run(TextChunk(text="Hel"), EndChunk(status=RunStatus.CANCELLED))
RESUMED_AFTER = 2  # the tool round trip, resumed after its tool call
ROUND_TRIP_USAGE = Usage(model="claude-x", input_tokens=30, output_tokens=9)

# --- seed 001: the AI SDK UI message stream ---------------------------------------------------
UI_START = (
    b'data: {"type":"start","messageId":"msg_abc","messageMetadata":{"runId":"run_abc"}}\n\n'
    b'data: {"type":"start-step"}\n\n'
)
UI_GOLDEN = {
    "text only": (
        UI_START + b'data: {"type":"text-start","id":"txt_1"}\n\n'
        b'data: {"type":"text-delta","id":"txt_1","delta":"Hel"}\n\n'
        b'data: {"type":"text-delta","id":"txt_1","delta":"lo"}\n\n'
        b'data: {"type":"text-end","id":"txt_1"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"stop","messageMetadata":{"usage":{"model":"claude-x",'
        b'"inputTokens":10,"outputTokens":2,"totalTokens":12},"status":"succeeded"}}\n\n'
        b"data: [DONE]\n\n"
    ),
    "tool round trip": (
        UI_START + b'data: {"type":"text-start","id":"txt_1"}\n\n'
        b'data: {"type":"text-delta","id":"txt_1","delta":"Let me add."}\n\n'
        b'data: {"type":"text-end","id":"txt_1"}\n\n'
        b'data: {"type":"tool-input-available","toolCallId":"t1","toolName":"calculator","input":{"expression":"1+1"}}\n\n'
        b'data: {"type":"tool-output-available","toolCallId":"t1","output":{"result":2}}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"txt_4"}\n\n'
        b'data: {"type":"text-delta","id":"txt_4","delta":"It is 2."}\n\n'
        b'data: {"type":"text-end","id":"txt_4"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"stop","messageMetadata":{"usage":{"model":"claude-x",'
        b'"inputTokens":30,"outputTokens":9,"totalTokens":39},"status":"succeeded"}}\n\n'
        b"data: [DONE]\n\n"
    ),
    "failed": (
        UI_START + b'data: {"type":"text-start","id":"txt_1"}\n\n'
        b'data: {"type":"text-delta","id":"txt_1","delta":"Partial"}\n\n'
        b'data: {"type":"text-end","id":"txt_1"}\n\n'
        b'data: {"type":"error","errorText":"The model is overloaded."}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"error","messageMetadata":{"usage":{"model":"claude-x",'
        b'"inputTokens":5,"outputTokens":1,"totalTokens":6},"status":"failed"}}\n\n'
        b"data: [DONE]\n\n"
    ),
    "cancelled without usage": (
        UI_START + b'data: {"type":"text-start","id":"txt_1"}\n\n'
        b'data: {"type":"text-delta","id":"txt_1","delta":"Hel"}\n\n'
        b'data: {"type":"text-end","id":"txt_1"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"other","messageMetadata":{"status":"cancelled"}}\n\n'
        b"data: [DONE]\n\n"
    ),
    # A continuation: no start, no start-step; the output attaches to the call the client holds.
    "resumed": (
        b'data: {"type":"tool-output-available","toolCallId":"t1","output":{"result":2}}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"txt_4"}\n\n'
        b'data: {"type":"text-delta","id":"txt_4","delta":"It is 2."}\n\n'
        b'data: {"type":"text-end","id":"txt_4"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"stop","messageMetadata":{"usage":{"model":"claude-x",'
        b'"inputTokens":30,"outputTokens":9,"totalTokens":39},"status":"succeeded"}}\n\n'
        b"data: [DONE]\n\n"
    ),
}

# --- seed 002: chat events ---------------------------------------------------------------------
CHAT_GOLDEN = {
    "text only": (
        b'data: {"type": "text", "content": "Hel"}\n\n'
        b'data: {"type": "text", "content": "lo"}\n\n'
        b'data: {"type": "done", "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}}\n\n'
    ),
    "tool round trip": (
        b'data: {"type": "text", "content": "Let me add."}\n\n'
        b'data: {"type": "tool_call", "name": "calculator", "args": {"expression": "1+1"}}\n\n'
        b'data: {"type": "tool_result", "name": "calculator", "result": {"result": 2}}\n\n'
        b'data: {"type": "text", "content": "It is 2."}\n\n'
        b'data: {"type": "done", "usage": {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39}}\n\n'
    ),
    "failed": (
        b'data: {"type": "text", "content": "Partial"}\n\n'
        b'data: {"type": "error", "message": "The model is overloaded."}\n\n'
    ),
    "cancelled without usage": (
        b'data: {"type": "text", "content": "Hel"}\n\n'
        b'data: {"type": "done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}}\n\n'
    ),
    # The call lies before the resume point: its name is not known here.
    "resumed": (
        b'data: {"type": "tool_result", "name": null, "result": {"result": 2}}\n\n'
        b'data: {"type": "text", "content": "It is 2."}\n\n'
        b'data: {"type": "done", "usage": {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39}}\n\n'
    ),
}

# --- seed 003: content / is_final / metrics -----------------------------------------------------
CONTENT_GOLDEN = {
    "text only": (
        b'data: {"content": "Hel", "is_final": false, "metrics": null}\n\n'
        b'data: {"content": "lo", "is_final": false, "metrics": null}\n\n'
        b'data: {"content": "", "is_final": true, "metrics": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12, '
        b'"time_to_first_token_ms": 500, "duration_ms": 1250, "model": "claude-x"}}\n\n'
    ),
    "tool round trip": (
        b'data: {"content": "Let me add.", "is_final": false, "metrics": null}\n\n'
        b'data: {"content": "It is 2.", "is_final": false, "metrics": null}\n\n'
        b'data: {"content": "", "is_final": true, "metrics": {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39, '
        b'"time_to_first_token_ms": 500, "duration_ms": 1750, "model": "claude-x"}}\n\n'
    ),
    "failed": (
        b'data: {"content": "Partial", "is_final": false, "metrics": null}\n\n'
        b'data: {"content": "", "is_final": true, "metrics": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6, '
        b'"time_to_first_token_ms": 500, "duration_ms": 1250, "model": "claude-x"}, '
        b'"error": {"code": "model_overloaded", "message": "The model is overloaded."}}\n\n'
    ),
    "cancelled without usage": (
        b'data: {"content": "Hel", "is_final": false, "metrics": null}\n\n'
        b'data: {"content": "", "is_final": true, "metrics": {"input_tokens": null, "output_tokens": null, '
        b'"total_tokens": null, "time_to_first_token_ms": 500, "duration_ms": 750, "model": null}, '
        b'"error": {"code": "cancelled", "message": "The run was cancelled."}}\n\n'
    ),
    # Whether text came before the resume point is unknown, so time to first token is too.
    "resumed": (
        b'data: {"content": "It is 2.", "is_final": false, "metrics": null}\n\n'
        b'data: {"content": "", "is_final": true, "metrics": {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39, '
        b'"time_to_first_token_ms": null, "duration_ms": 1750, "model": "claude-x"}}\n\n'
    ),
}

SCENARIOS = {
    "text only": (TEXT_ONLY, 0),
    "tool round trip": (TOOL_ROUND_TRIP, 0),
    "failed": (FAILED, 0),
    "cancelled without usage": (CANCELLED_WITHOUT_USAGE, 0),
    "resumed": (TOOL_ROUND_TRIP, RESUMED_AFTER),
}
GOLDEN = [
    pytest.param(fmt, scenario, expected, id=f"{fmt.name}: {scenario}")
    for fmt, table in ((UI_MESSAGE_STREAM, UI_GOLDEN), (CHAT_EVENTS, CHAT_GOLDEN), (CONTENT_FINAL, CONTENT_GOLDEN))
    for scenario, expected in table.items()
]


@pytest.mark.parametrize(("fmt", "scenario", "expected"), GOLDEN)
def test_whole_run_renders_to_exact_bytes(fmt, scenario, expected):
    chunks, resumed_after = SCENARIOS[scenario]
    assert render(fmt, a_run(), chunks, resumed_after) == expected


def test_resumed_stream_after_the_run_finished_takes_usage_from_the_run_record():
    # Resumed after the usage chunk: only the end chunk is left to render.
    end_only = len(TOOL_ROUND_TRIP) - 1
    run = a_run(usage=ROUND_TRIP_USAGE)
    assert events(render(CHAT_EVENTS, run, TOOL_ROUND_TRIP, end_only)) == [
        '{"type": "done", "usage": {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39}}'
    ]
    finish = json.loads(events(render(UI_MESSAGE_STREAM, run, TOOL_ROUND_TRIP, end_only))[-2])
    assert finish["messageMetadata"]["usage"]["totalTokens"] == 39
    final = json.loads(events(render(CONTENT_FINAL, run, TOOL_ROUND_TRIP, end_only))[-1])
    assert final["metrics"]["total_tokens"] == 39


# --- seed 001: each event on its own -------------------------------------------------------------
@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        (ui_message_stream.StartChunk(message_id="msg_1"), b'data: {"type":"start","messageId":"msg_1"}\n\n'),
        (ui_message_stream.StartStepChunk(), b'data: {"type":"start-step"}\n\n'),
        (ui_message_stream.FinishStepChunk(), b'data: {"type":"finish-step"}\n\n'),
        (ui_message_stream.TextStartChunk(id="txt_1"), b'data: {"type":"text-start","id":"txt_1"}\n\n'),
        (
            ui_message_stream.TextDeltaChunk(id="txt_1", delta='two\nlines "quoted" é'),
            'data: {"type":"text-delta","id":"txt_1","delta":"two\\nlines \\"quoted\\" é"}\n\n'.encode(),
        ),
        (ui_message_stream.TextEndChunk(id="txt_1"), b'data: {"type":"text-end","id":"txt_1"}\n\n'),
        (
            ui_message_stream.ToolInputAvailableChunk(tool_call_id="t1", tool_name="current_time", input={}),
            b'data: {"type":"tool-input-available","toolCallId":"t1","toolName":"current_time","input":{}}\n\n',
        ),
        (
            # A tool that returned nothing keeps its `output` key: the client reads it.
            ui_message_stream.ToolOutputAvailableChunk(tool_call_id="t1", output=None),
            b'data: {"type":"tool-output-available","toolCallId":"t1","output":null}\n\n',
        ),
        (
            ui_message_stream.ToolApprovalRequestChunk(approval_id="apr_1", tool_call_id="t1"),
            b'data: {"type":"tool-approval-request","approvalId":"apr_1","toolCallId":"t1"}\n\n',
        ),
        (
            ui_message_stream.ToolOutputErrorChunk(tool_call_id="t1", error_text="no access"),
            b'data: {"type":"tool-output-error","toolCallId":"t1","errorText":"no access"}\n\n',
        ),
        (
            ui_message_stream.ToolOutputDeniedChunk(tool_call_id="t1"),
            b'data: {"type":"tool-output-denied","toolCallId":"t1"}\n\n',
        ),
        (ui_message_stream.ErrorUIChunk(error_text="boom"), b'data: {"type":"error","errorText":"boom"}\n\n'),
        (ui_message_stream.FinishChunk(), b'data: {"type":"finish"}\n\n'),
        (ui_message_stream.FinishChunk(finish_reason="error"), b'data: {"type":"finish","finishReason":"error"}\n\n'),
    ],
)
def test_ui_message_chunk_encodes_as_json_stringify_does(chunk, expected):
    assert chunk.encode() == expected


def test_ui_message_stream_ends_with_the_sdk_done_sentinel_and_pings_with_a_comment():
    assert ui_message_stream.DONE == b"data: [DONE]\n\n"
    assert UI_MESSAGE_STREAM.encoder(StreamContext(run=a_run())).ping() == PING


def test_ui_message_stream_opens_with_start_and_a_step_only_from_the_beginning():
    assert UI_MESSAGE_STREAM.encoder(StreamContext(run=a_run())).open() == UI_START
    assert UI_MESSAGE_STREAM.encoder(StreamContext(run=a_run(), resumed_after=3)).open() == b""


def test_failed_run_without_an_error_chunk_still_shows_an_error_before_finish():
    run = stored_run(EndChunk(status=RunStatus.EXPIRED))
    assert events(render(UI_MESSAGE_STREAM, a_run(), run))[-4:] == [
        '{"type":"error","errorText":"The run did not finish in time."}',
        '{"type":"finish-step"}',
        '{"type":"finish","finishReason":"error","messageMetadata":{"status":"expired"}}',
        "[DONE]",
    ]


def test_resumed_failed_stream_uses_the_recorded_error_when_its_chunk_came_before():
    run = a_run(error=RunError(code="worker_lost", message="The worker stopped."))
    chunks = stored_run(
        ErrorChunk(code="worker_lost", message="The worker stopped."), EndChunk(status=RunStatus.FAILED)
    )
    assert events(render(UI_MESSAGE_STREAM, run, chunks, resumed_after=1))[0] == (
        '{"type":"error","errorText":"The worker stopped."}'
    )
    assert events(render(CHAT_EVENTS, run, chunks, resumed_after=1)) == [
        '{"type": "error", "message": "The worker stopped."}'
    ]
    final = json.loads(events(render(CONTENT_FINAL, run, chunks, resumed_after=1))[-1])
    assert final["error"] == {"code": "worker_lost", "message": "The worker stopped."}


def test_resumed_mid_text_opens_a_new_text_part_instead_of_a_delta_for_an_unknown_one():
    assert events(render(UI_MESSAGE_STREAM, a_run(), TEXT_ONLY, resumed_after=1))[:3] == [
        '{"type":"text-start","id":"txt_2"}',
        '{"type":"text-delta","id":"txt_2","delta":"lo"}',
        '{"type":"text-end","id":"txt_2"}',
    ]


def test_tool_result_for_a_call_never_shown_is_dropped_on_a_stream_from_the_start():
    chunks = stored_run(ToolResultChunk(id="ghost", output=1), EndChunk(status=RunStatus.SUCCEEDED))
    assert "tool-output-available" not in render(UI_MESSAGE_STREAM, a_run(), chunks).decode()


def test_consecutive_tool_rounds_are_separate_steps():
    chunks = stored_run(
        ToolUseChunk(id="t1", name="current_time", input={}),
        ToolResultChunk(id="t1", output="12:00"),
        ToolUseChunk(id="t2", name="calculator", input={"expression": "12*60"}),
        ToolResultChunk(id="t2", output=720),
        EndChunk(status=RunStatus.SUCCEEDED),
    )
    types = [json.loads(e)["type"] for e in events(render(UI_MESSAGE_STREAM, a_run(), chunks))[:-1]]
    assert types == [
        "start", "start-step",
        "tool-input-available", "tool-output-available", "finish-step",
        "start-step", "tool-input-available", "tool-output-available", "finish-step",
        "start-step", "finish-step",  # ended after tool results: a last step of its own (see _end)
        "finish",
    ]  # fmt: skip


def test_nothing_after_the_end_chunk_is_sent():
    encoder = UI_MESSAGE_STREAM.encoder(StreamContext(run=a_run()))
    encoder.encode(StoredChunk(seq=1, chunk=EndChunk(status=RunStatus.SUCCEEDED), written_at=CREATED_AT))
    assert encoder.encode(StoredChunk(seq=2, chunk=TextChunk(text="late"), written_at=CREATED_AT)) == b""


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (
            a_run(),
            {
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "connection": "keep-alive",
                "x-vercel-ai-ui-message-stream": "v1",
                "x-accel-buffering": "no",
                "x-conversation-id": CONVERSATION,
            },
        ),
        (
            a_run(conversation_id=None),
            {
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "connection": "keep-alive",
                "x-vercel-ai-ui-message-stream": "v1",
                "x-accel-buffering": "no",
            },
        ),
    ],
)
def test_ui_message_stream_headers_are_the_sdks_plus_the_conversation(run, expected):
    assert UI_MESSAGE_STREAM.headers(StreamContext(run=run)) == expected


# --- seed 001: runs that wait for their client ---------------------------------------------------
APPROVAL = ApprovalAction(approval_id="apr_1", tool_call_id="t1", name="calculator", input={"expression": "1+1"})
SECOND_APPROVAL = ApprovalAction(approval_id="apr_3", tool_call_id="t3", name="calculator", input={"expression": "2+2"})
LOCATION = ClientToolAction(tool_call_id="t2", name="get_location", input={})
EXPIRES = "2030-01-01T00:00:00.000Z"
WAIT_SEQ = 4
"""In APPROVED/DENIED: the seq of the requires_action chunk, which the run records as `last_seq`."""


def pending(*actions: RequiredAction, answered: bool = False) -> list[PendingAction]:
    def answer(action: RequiredAction) -> dict:
        if not answered:
            return {}
        if isinstance(action, ApprovalAction):
            return {"decision": ApprovalDecision(approval_id=action.approval_id, approved=True)}
        return {"output": ToolOutput(tool_call_id=action.tool_call_id, output="somewhere")}

    return [PendingAction(action=action, input_hash="h", **answer(action)) for action in actions]


def waiting(*actions: RequiredAction, last_seq: int = WAIT_SEQ) -> RunRecord:
    return a_run(status=RunStatus.REQUIRES_ACTION, last_seq=last_seq, actions=pending(*actions))


def answered(*actions: RequiredAction, status: RunStatus = RunStatus.QUEUED, last_seq: int = WAIT_SEQ) -> RunRecord:
    return a_run(status=status, last_seq=last_seq, actions=pending(*actions, answered=True))


def approval_log(result: ToolResultChunk, reply: str) -> list[StoredChunk]:
    return stored_run(
        TextChunk(text="Let me add."),
        ToolUseChunk(id="t1", name="calculator", input={"expression": "1+1"}),
        StepEndChunk(step=1, model="claude-x", input_tokens=20, output_tokens=5),
        RequiresActionChunk(actions=[APPROVAL], expires_at=EXPIRES),
        result,
        TextChunk(text=reply),
        StepEndChunk(step=2, model="claude-x", input_tokens=30, output_tokens=9),
        UsageChunk(model="claude-x", input_tokens=50, output_tokens=14),
        EndChunk(status=RunStatus.SUCCEEDED),
    )


APPROVED = approval_log(ToolResultChunk(id="t1", output={"result": 2}), "It is 2.")
DENIED = approval_log(ToolResultChunk(id="t1", output={"denied": True, "reason": "Not now."}, is_error=True), "I did not.")
CLIENT_TOOL_FAILED = stored_run(
    ToolUseChunk(id="t2", name="get_location", input={}, executor="client"),
    StepEndChunk(step=1, model="claude-x", input_tokens=20, output_tokens=5),
    RequiresActionChunk(actions=[LOCATION], expires_at=EXPIRES),
    ToolResultChunk(id="t2", output="Permission denied.", is_error=True),
    TextChunk(text="I could not tell."),
    EndChunk(status=RunStatus.SUCCEEDED),
)
TWO_APPROVALS = stored_run(
    ToolUseChunk(id="t1", name="calculator", input={"expression": "1+1"}),
    ToolUseChunk(id="t3", name="calculator", input={"expression": "2+2"}),
    StepEndChunk(step=1, model="claude-x", input_tokens=20, output_tokens=5),
    RequiresActionChunk(actions=[APPROVAL, SECOND_APPROVAL], expires_at=EXPIRES),
)
UI_CONTINUED = b'data: {"type":"start","messageId":"msg_abc","messageMetadata":{"runId":"run_abc"}}\n\n'
WAITS_FOR_CLIENT = (
    b'data: {"type":"finish-step"}\n\n'
    b'data: {"type":"finish","finishReason":"tool-calls","messageMetadata":{"status":"requires_action"}}\n\n'
    b"data: [DONE]\n\n"
)
SUCCEEDED_64 = (
    b'data: {"type":"finish-step"}\n\n'
    b'data: {"type":"finish","finishReason":"stop","messageMetadata":{"usage":{"model":"claude-x",'
    b'"inputTokens":50,"outputTokens":14,"totalTokens":64},"status":"succeeded"}}\n\n'
    b"data: [DONE]\n\n"
)
UI_WAIT_GOLDEN = {
    # The first response: it ends at the wait, whatever the log holds after it.
    "approval requested": (
        UI_MESSAGE_STREAM, waiting(APPROVAL), APPROVED, 0,
        UI_START + b'data: {"type":"text-start","id":"txt_1"}\n\n'
        b'data: {"type":"text-delta","id":"txt_1","delta":"Let me add."}\n\n'
        b'data: {"type":"text-end","id":"txt_1"}\n\n'
        b'data: {"type":"tool-input-available","toolCallId":"t1","toolName":"calculator","input":{"expression":"1+1"}}\n\n'
        b'data: {"type":"tool-approval-request","approvalId":"apr_1","toolCallId":"t1"}\n\n'
        + WAITS_FOR_CLIENT,
    ),
    "client tool called": (
        UI_MESSAGE_STREAM, waiting(LOCATION, last_seq=3), CLIENT_TOOL_FAILED, 0,
        UI_START + b'data: {"type":"tool-input-available","toolCallId":"t2","toolName":"get_location","input":{}}\n\n'
        + WAITS_FOR_CLIENT,
    ),
    # The answer's response: the same message again, its results first, then the next step.
    "approved, continued": (
        UI_MESSAGE_CONTINUATION, answered(APPROVAL), APPROVED, WAIT_SEQ,
        UI_CONTINUED + b'data: {"type":"tool-output-available","toolCallId":"t1","output":{"result":2}}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"txt_6"}\n\n'
        b'data: {"type":"text-delta","id":"txt_6","delta":"It is 2."}\n\n'
        b'data: {"type":"text-end","id":"txt_6"}\n\n'
        + SUCCEEDED_64,
    ),
    "denied, continued": (
        UI_MESSAGE_CONTINUATION, answered(APPROVAL), DENIED, WAIT_SEQ,
        UI_CONTINUED + b'data: {"type":"tool-output-denied","toolCallId":"t1"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"txt_6"}\n\n'
        b'data: {"type":"text-delta","id":"txt_6","delta":"I did not."}\n\n'
        b'data: {"type":"text-end","id":"txt_6"}\n\n'
        + SUCCEEDED_64,
    ),
    "client tool failed, continued": (
        UI_MESSAGE_CONTINUATION, answered(LOCATION, last_seq=3), CLIENT_TOOL_FAILED, 3,
        UI_CONTINUED + b'data: {"type":"tool-output-error","toolCallId":"t2","errorText":"Permission denied."}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"txt_5"}\n\n'
        b'data: {"type":"text-delta","id":"txt_5","delta":"I could not tell."}\n\n'
        b'data: {"type":"text-end","id":"txt_5"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"stop","messageMetadata":{"status":"succeeded"}}\n\n'
        b"data: [DONE]\n\n",
    ),
    # One of two approvals answered: the response asks again only for the other one.
    "partly answered, still waiting": (
        UI_MESSAGE_CONTINUATION,
        a_run(status=RunStatus.REQUIRES_ACTION, last_seq=WAIT_SEQ,
              actions=[*pending(APPROVAL, answered=True), *pending(SECOND_APPROVAL)]),
        TWO_APPROVALS, WAIT_SEQ - 1,
        UI_CONTINUED + b'data: {"type":"tool-approval-request","approvalId":"apr_3","toolCallId":"t3"}\n\n'
        b'data: {"type":"finish","finishReason":"tool-calls","messageMetadata":{"status":"requires_action"}}\n\n'
        b"data: [DONE]\n\n",
    ),
    # A page reloaded after the run moved on: the whole message, the answered wait inside it.
    "answered, replayed": (
        UI_MESSAGE_STREAM, answered(APPROVAL, status=RunStatus.SUCCEEDED), APPROVED, 0,
        UI_START + b'data: {"type":"text-start","id":"txt_1"}\n\n'
        b'data: {"type":"text-delta","id":"txt_1","delta":"Let me add."}\n\n'
        b'data: {"type":"text-end","id":"txt_1"}\n\n'
        b'data: {"type":"tool-input-available","toolCallId":"t1","toolName":"calculator","input":{"expression":"1+1"}}\n\n'
        b'data: {"type":"tool-approval-request","approvalId":"apr_1","toolCallId":"t1"}\n\n'
        b'data: {"type":"tool-output-available","toolCallId":"t1","output":{"result":2}}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"txt_6"}\n\n'
        b'data: {"type":"text-delta","id":"txt_6","delta":"It is 2."}\n\n'
        b'data: {"type":"text-end","id":"txt_6"}\n\n'
        + SUCCEEDED_64,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("fmt", "run", "chunks", "resumed_after", "expected"), UI_WAIT_GOLDEN.values(), ids=UI_WAIT_GOLDEN)
def test_run_that_waits_for_its_client_renders_to_exact_bytes(fmt, run, chunks, resumed_after, expected):
    assert render(fmt, run, chunks, resumed_after) == expected


def test_the_wait_finishes_the_response_and_nothing_after_it_is_sent():
    encoder = UI_MESSAGE_STREAM.encoder(StreamContext(run=a_run()))  # a live stream: the run was queued
    sent = [encoder.encode(chunk) for chunk in APPROVED]
    assert encoder.finished
    assert sent[WAIT_SEQ - 1].endswith(WAITS_FOR_CLIENT) and sent[WAIT_SEQ:] == [b""] * (len(APPROVED) - WAIT_SEQ)


def test_a_later_wait_of_a_run_that_moved_on_is_the_current_one():
    # Opened after the first wait was answered (last_seq 4, running); the run then waits again.
    log = stored_run(
        *(c.chunk for c in APPROVED[:5]),
        ToolUseChunk(id="t6", name="calculator", input={"expression": "3+3"}),
        RequiresActionChunk(
            actions=[ApprovalAction(approval_id="apr_6", tool_call_id="t6", name="calculator", input={})],
            expires_at=EXPIRES,
        ),
        TextChunk(text="never shown"),
    )
    datas = events(render(UI_MESSAGE_STREAM, answered(APPROVAL, status=RunStatus.RUNNING), log))
    chunks = [json.loads(data) for data in datas[:-1]]
    requests = [c["approvalId"] for c in chunks if c["type"] == "tool-approval-request"]
    assert requests == ["apr_1", "apr_6"]
    assert chunks[-1] == {"type": "finish", "finishReason": "tool-calls", "messageMetadata": {"status": "requires_action"}}
    assert "never shown" not in "".join(datas)


def test_a_server_tools_error_result_stays_an_available_output():
    log = stored_run(
        ToolUseChunk(id="t1", name="calculator", input={"expression": "1/0"}),
        ToolResultChunk(id="t1", output={"error": "division by zero"}, is_error=True),
        EndChunk(status=RunStatus.SUCCEEDED),
    )
    assert (
        '{"type":"tool-output-available","toolCallId":"t1","output":{"error":"division by zero"}}'
        in events(render(UI_MESSAGE_STREAM, a_run(), log))
    )


# --- seed 002: each event on its own -------------------------------------------------------------
@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        (TextChunk(text='say "hi"\n'), b'data: {"type": "text", "content": "say \\"hi\\"\\n"}\n\n'),
        (
            ToolUseChunk(id="t1", name="web_search", input={"query": "ML applications 2026"}),
            b'data: {"type": "tool_call", "name": "web_search", "args": {"query": "ML applications 2026"}}\n\n',
        ),
        (ToolResultChunk(id="t9", output="..."), b'data: {"type": "tool_result", "name": null, "result": "..."}\n\n'),
        (UsageChunk(model="claude-x", input_tokens=50, output_tokens=120), b""),
        (ErrorChunk(code="model_error", message="held for the end chunk"), b""),
        (
            EndChunk(status=RunStatus.SUCCEEDED),
            b'data: {"type": "done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}}\n\n',
        ),
        (
            EndChunk(status=RunStatus.CANCELLED),
            b'data: {"type": "done", "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}}\n\n',
        ),
        (EndChunk(status=RunStatus.FAILED), b'data: {"type": "error", "message": "The run failed."}\n\n'),
        (
            EndChunk(status=RunStatus.EXPIRED),
            b'data: {"type": "error", "message": "The run did not finish in time."}\n\n',
        ),
    ],
)
def test_chat_event_for_one_chunk_matches_the_seed_shape(chunk, expected):
    encoder = CHAT_EVENTS.encoder(StreamContext(run=a_run()))
    assert encoder.encode(StoredChunk(seq=1, chunk=chunk, written_at=CREATED_AT)) == expected


def test_tool_result_is_named_after_its_call():
    encoder = CHAT_EVENTS.encoder(StreamContext(run=a_run()))
    encoder.encode(StoredChunk(seq=1, chunk=ToolUseChunk(id="t1", name="web_search", input={}), written_at=CREATED_AT))
    result = encoder.encode(StoredChunk(seq=2, chunk=ToolResultChunk(id="t1", output=[1]), written_at=CREATED_AT))
    assert result == b'data: {"type": "tool_result", "name": "web_search", "result": [1]}\n\n'


def test_chat_events_open_with_nothing_ping_with_a_comment_and_add_no_headers():
    encoder = CHAT_EVENTS.encoder(StreamContext(run=a_run()))
    assert (encoder.open(), encoder.ping(), CHAT_EVENTS.headers(StreamContext(run=a_run()))) == (b"", PING, {})


# --- seed 003: each event on its own -------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ContentEvent(content="chunk of text", is_final=False), b'data: {"content": "chunk of text", "is_final": false, "metrics": null}\n\n'),
        (
            ContentEvent(
                content="",
                is_final=True,
                metrics=content_final.Metrics(
                    input_tokens=None, output_tokens=None, total_tokens=None,
                    time_to_first_token_ms=None, duration_ms=0, model=None,
                ),
                error=content_final.FinalError(code="cancelled", message="The run was cancelled."),
            ),
            (
                b'data: {"content": "", "is_final": true, "metrics": {"input_tokens": null, "output_tokens": null, '
                b'"total_tokens": null, "time_to_first_token_ms": null, "duration_ms": 0, "model": null}, '
                b'"error": {"code": "cancelled", "message": "The run was cancelled."}}\n\n'
            ),
        ),
    ],
)  # fmt: skip
def test_content_event_encodes_in_the_seed_shape(event, expected):
    assert event.encode() == expected


@pytest.mark.parametrize(
    "chunk",
    [
        ToolUseChunk(id="t1", name="calculator", input={}),
        ToolResultChunk(id="t1", output=2),
        UsageChunk(model="claude-x", input_tokens=1, output_tokens=1),
        ErrorChunk(code="model_error", message="held for the final event"),
    ],
)
def test_content_final_shows_only_text_before_the_final_event(chunk):
    encoder = CONTENT_FINAL.encoder(StreamContext(run=a_run()))
    assert encoder.encode(StoredChunk(seq=1, chunk=chunk, written_at=CREATED_AT)) == b""


def test_metrics_never_go_negative_when_clocks_disagree():
    chunks = [
        StoredChunk(seq=1, chunk=TextChunk(text="x"), written_at=CREATED_AT - 0.2),
        StoredChunk(seq=2, chunk=EndChunk(status=RunStatus.SUCCEEDED), written_at=CREATED_AT - 0.1),
    ]
    final = json.loads(events(render(CONTENT_FINAL, a_run(), chunks))[-1])
    assert (final["metrics"]["time_to_first_token_ms"], final["metrics"]["duration_ms"]) == (0, 0)


def test_content_final_headers_are_the_seeds():
    assert CONTENT_FINAL.headers(StreamContext(run=a_run())) == {
        "Cache-Control": "no-cache",
        "Connection": "keep-alive",
    }


def test_every_format_has_a_distinct_name_and_streams_sse():
    formats: list[StreamFormat] = [UI_MESSAGE_STREAM, CHAT_EVENTS, CONTENT_FINAL]
    assert [f.name for f in formats] == ["ui-message-stream", "chat-events", "content-final"]
    assert {f.media_type for f in formats} == {"text/event-stream"}


# --- properties: any run, from the start or resumed, ends exactly once -------------------------
TOOL_IDS = st.sampled_from(["t1", "t2", "t3"])
TEXTS = st.text(max_size=8)
BODY_CHUNK = st.one_of(
    st.builds(TextChunk, text=TEXTS),
    st.builds(ToolUseChunk, id=TOOL_IDS, name=st.sampled_from(["calculator", "current_time"]),
              input=st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2)),
    st.builds(ToolResultChunk, id=TOOL_IDS, output=st.one_of(st.none(), st.integers(), TEXTS)),
)  # fmt: skip
FAILED_STATUSES = {RunStatus.FAILED, RunStatus.EXPIRED}


@st.composite
def runs(draw) -> tuple[list[StoredChunk], int]:
    """Any mix of text/tool chunks, then an optional error, an optional usage, one end; a resume point."""
    chunks = draw(st.lists(BODY_CHUNK, max_size=12))
    status = draw(st.sampled_from([RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.EXPIRED]))
    if status in FAILED_STATUSES and draw(st.booleans()):
        chunks.append(ErrorChunk(code="model_error", message=draw(TEXTS)))
    if draw(st.booleans()):
        chunks.append(
            UsageChunk(
                model="claude-x", input_tokens=draw(st.integers(0, 999)), output_tokens=draw(st.integers(0, 999))
            )
        )
    chunks.append(EndChunk(status=status))
    stored = stored_run(*chunks)
    resumed_after = draw(st.sampled_from([0, draw(st.integers(0, len(stored) - 1))]))
    return stored, resumed_after


def texts_after(stored: list[StoredChunk], resumed_after: int) -> str:
    return "".join(c.chunk.text for c in stored if c.seq > resumed_after and isinstance(c.chunk, TextChunk))


UI_CHUNKS = TypeAdapter(UIMessageChunk)
CHAT_EVENTS_ADAPTER = TypeAdapter(ChatStreamEvent)


TOOL_CHUNKS = {"tool-input-available", "tool-approval-request", "tool-output-available", "tool-output-error",
               "tool-output-denied"}  # fmt: skip


def well_formed_ui_stream(datas: list[str], *, opening: str, check_calls: bool) -> list:
    """The chunks of one response, checked as the SDK's client would (`process-ui-message-stream.ts`)
    and for our own promise: exactly one `finish`, last, then `[DONE]`.

    `opening`: `start` (from the beginning), `resumed` (inside the client's step, no start) or
    `continued` (the answered message again: `start`, and no step until the next model call)."""
    assert datas[-1] == "[DONE]" and datas.count("[DONE]") == 1
    parsed = [UI_CHUNKS.validate_json(data) for data in datas[:-1]]  # every event is a valid chunk
    types = [chunk.type for chunk in parsed]
    assert types.count("finish") == 1 and types[-1] == "finish"
    if opening == "start":
        assert types[:2] == ["start", "start-step"]
    elif opening == "continued":
        assert types[0] == "start" and types.count("start") == 1
    else:
        assert "start" not in types
    in_step = opening == "resumed"  # a continuation starts inside the step the client already has
    open_text: set[str] = set()
    tool_calls: set[str] = set()
    for chunk in parsed:
        if chunk.type == "start-step":
            assert not in_step
            in_step = True
        elif chunk.type == "finish-step":
            assert in_step and not open_text
            in_step = False
        elif chunk.type == "text-start":
            assert in_step and chunk.id not in open_text
            open_text.add(chunk.id)
        elif chunk.type in ("text-delta", "text-end"):
            assert chunk.id in open_text
            if chunk.type == "text-end":
                open_text.remove(chunk.id)
        elif chunk.type in TOOL_CHUNKS or chunk.type == "error":
            assert not open_text  # a text block is closed before any other part
            if chunk.type == "tool-input-available":
                assert in_step
                tool_calls.add(chunk.tool_call_id)
            elif chunk.type in TOOL_CHUNKS and check_calls:
                assert chunk.tool_call_id in tool_calls  # the client throws on a call it does not hold
    assert not in_step and not open_text
    return parsed


@settings(max_examples=300, deadline=None)
@given(runs())
def test_ui_message_stream_is_well_formed_for_any_run(run):
    stored, resumed_after = run
    datas = events(render(UI_MESSAGE_STREAM, a_run(), stored, resumed_after))
    parsed = well_formed_ui_stream(
        datas, opening="start" if resumed_after == 0 else "resumed", check_calls=resumed_after == 0
    )
    types = [chunk.type for chunk in parsed]
    assert "".join(c.delta for c in parsed if c.type == "text-delta") == texts_after(stored, resumed_after)
    if stored[-1].chunk.status in FAILED_STATUSES:
        assert types[-3:] == ["error", "finish-step", "finish"] and types.count("error") == 1
    else:
        assert types[-2:] == ["finish-step", "finish"] and "error" not in types


@st.composite
def runs_that_wait(draw) -> tuple[list[StoredChunk], list[RequiredAction]]:
    """Any text/tool chunks, one step that ends in calls the client must answer (approvals, client
    tools), the wait, then their results (approved, denied, client output or error), more chunks,
    an optional error and usage, and the end."""
    before = draw(st.lists(BODY_CHUNK, max_size=6))
    ids = draw(st.lists(st.sampled_from(["w1", "w2", "w3"]), min_size=1, max_size=3, unique=True))
    actions: list[RequiredAction] = []
    calls, results = [], []
    for call_id in ids:
        if draw(st.booleans()):
            actions.append(ApprovalAction(approval_id=f"apr_{call_id}", tool_call_id=call_id, name="calculator", input={}))
            calls.append(ToolUseChunk(id=call_id, name="calculator", input={}))
            denied = draw(st.booleans())
            results.append(ToolResultChunk(id=call_id, output={"denied": True, "reason": "no"} if denied else 1,
                                           is_error=denied))
        else:
            actions.append(ClientToolAction(tool_call_id=call_id, name="get_location", input={}))
            calls.append(ToolUseChunk(id=call_id, name="get_location", input={}, executor="client"))
            results.append(ToolResultChunk(id=call_id, output=draw(TEXTS), is_error=draw(st.booleans())))
    wait = [*calls, StepEndChunk(step=1, model="claude-x", input_tokens=1, output_tokens=1),
            RequiresActionChunk(actions=actions, expires_at=EXPIRES)]
    (rest, _) = draw(runs())
    return stored_run(*before, *wait, *results, *(c.chunk for c in rest)), actions  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(runs_that_wait())
def test_a_run_that_waits_is_two_well_formed_responses_and_one_whole_replay(run):
    stored, actions = run
    wait_seq = next(c.seq for c in stored if isinstance(c.chunk, RequiresActionChunk))
    end = stored[-1].chunk
    approvals = sum(isinstance(action, ApprovalAction) for action in actions)

    first = well_formed_ui_stream(
        events(render(UI_MESSAGE_STREAM, waiting(*actions, last_seq=wait_seq), stored)), opening="start", check_calls=True
    )
    assert first[-1].finish_reason == "tool-calls"
    assert [c.type for c in first].count("tool-approval-request") == approvals
    continued = well_formed_ui_stream(
        events(render(UI_MESSAGE_CONTINUATION, answered(*actions, last_seq=wait_seq), stored, wait_seq)),
        opening="continued", check_calls=False,
    )
    assert "".join(c.delta for c in continued if c.type == "text-delta") == texts_after(stored, wait_seq)
    assert [c.tool_call_id for c in continued[1 : 1 + len(actions)]] == [a.tool_call_id for a in actions]
    replay = well_formed_ui_stream(
        events(render(UI_MESSAGE_STREAM, answered(*actions, status=end.status, last_seq=wait_seq), stored)),
        opening="start", check_calls=True,
    )
    assert "".join(c.delta for c in replay if c.type == "text-delta") == texts_after(stored, 0)
    assert replay[-1].finish_reason == continued[-1].finish_reason != "tool-calls"


@settings(max_examples=300, deadline=None)
@given(runs())
def test_chat_events_end_with_exactly_one_terminal_event(run):
    stored, resumed_after = run
    parsed = [
        CHAT_EVENTS_ADAPTER.validate_json(data) for data in events(render(CHAT_EVENTS, a_run(), stored, resumed_after))
    ]
    terminals = [event for event in parsed if event.type in ("done", "error")]
    assert len(terminals) == 1 and parsed[-1] is terminals[0]
    assert terminals[0].type == ("error" if stored[-1].chunk.status in FAILED_STATUSES else "done")
    assert "".join(e.content for e in parsed if e.type == "text") == texts_after(stored, resumed_after)


@settings(max_examples=300, deadline=None)
@given(runs())
def test_content_final_ends_with_exactly_one_final_event(run):
    stored, resumed_after = run
    parsed = [
        ContentEvent.model_validate_json(data) for data in events(render(CONTENT_FINAL, a_run(), stored, resumed_after))
    ]
    assert [event.is_final for event in parsed] == [False] * (len(parsed) - 1) + [True]
    assert (parsed[-1].error is None) == (stored[-1].chunk.status is RunStatus.SUCCEEDED)
    assert "".join(event.content for event in parsed) == texts_after(stored, resumed_after)


# --- request adapters ----------------------------------------------------------------------------
def new_conversation() -> str:
    return NEW_CONVERSATION


def ui_message(role: str, *parts: dict, id: str = "m") -> dict:
    return {"id": id, "role": role, "parts": list(parts)}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def tool_part(call_id: str, state: str, **fields) -> dict:
    return {"type": "tool-calculator", "toolCallId": call_id, "state": state, "input": {}, **fields}


SEED001_BODY = {
    # What DefaultChatTransport posts: the full history, plus its own `id`/`trigger`/`messageId`.
    "id": "chat-1",
    "trigger": "submit-message",
    "messageId": None,
    "messages": [
        ui_message("system", text("Be terse."), id="m0"),
        ui_message("user", text("What is 1+1?"), id="m1"),
        ui_message(
            "assistant",
            {"type": "step-start"},
            text("Let me add."),
            {"type": "tool-calculator", "toolCallId": "t1", "state": "output-available", "input": {}, "output": 2},
            text("It is 2."),
            id="m2",
        ),
        ui_message("user", {"type": "file", "mediaType": "image/png", "url": "data:,"}, text("And 2+2?"), id="m3"),
    ],
    "conversationId": CONVERSATION,
    "currentPage": "/billing",
    "approvalResponse": {"toolCallId": "t1", "approved": True},
    "onDisconnect": "continue",
}


def test_seed001_body_becomes_a_chat_run_with_the_clients_history():
    body = UIChatStreamRequest.model_validate(SEED001_BODY)
    assert body.on_disconnect == "continue" and body.approval_response and body.approval_response.approved
    request = ui_message_stream.to_run_request(body, new_conversation_id=new_conversation)
    assert request.model_dump(by_alias=True, exclude_none=True) == {
        "task": "And 2+2?",
        "agentRole": "chat",
        "conversationHistory": [
            {"role": "user", "content": "What is 1+1?"},
            {"role": "assistant", "content": "Let me add.It is 2."},
        ],
        "conversationId": CONVERSATION,
        "context": {"currentPage": "/billing"},
        "multitaskStrategy": "enqueue",  # a message sent while the chat still answers waits its turn
    }


def test_seed001_first_turn_gets_a_new_conversation_and_an_explicitly_empty_history():
    body = UIChatStreamRequest.model_validate({"messages": [ui_message("user", text("Hello"))]})
    request = ui_message_stream.to_run_request(body, new_conversation_id=new_conversation)
    assert (request.conversation_id, request.conversation_history, request.context) == (NEW_CONVERSATION, [], None)
    assert body.on_disconnect == "cancel"


def test_seed001_keeps_only_the_most_recent_history_the_run_can_hold():
    turns = [ui_message("user" if i % 2 == 0 else "assistant", text(f"turn {i}")) for i in range(301)]
    body = UIChatStreamRequest.model_validate({"messages": turns})
    history = ui_message_stream.to_run_request(body, new_conversation_id=new_conversation).conversation_history
    assert history is not None and len(history) == ui_message_stream.HISTORY_LIMIT
    assert history[-1].content == "turn 299"


def test_seed001_task_over_the_run_limit_is_a_client_error():
    body = UIChatStreamRequest.model_validate({"messages": [ui_message("user", text("x" * 100_001))]})
    with pytest.raises(InvalidRequestError):
        ui_message_stream.to_run_request(body, new_conversation_id=new_conversation)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": []},
        {"messages": "hello"},
        {"messages": [ui_message("assistant", text("I spoke last"))]},
        {"messages": [ui_message("user", {"type": "file", "mediaType": "image/png", "url": "data:,"})]},
        {"messages": [ui_message("user", text("   "))]},
        {"messages": [ui_message("user", {"type": "text", "text": 42})]},
        {"messages": [ui_message("user", {"text": "no type"})]},
        {"messages": [ui_message("robot", text("hi"))]},
        {"messages": [{"role": "user", "parts": [text("no id")]}]},
        {"messages": [ui_message("user", text("hi"))], "conversationId": "conv#123"},
        {"messages": [ui_message("user", text("hi"))], "conversationId": 42},
        {"messages": [ui_message("user", text("hi"))], "currentPage": 5},
        {"messages": [ui_message("user", text("hi"))], "approvalResponse": {"toolCallId": "t1", "approved": "yes"}},
        {"messages": [ui_message("user", text("hi"))], "approvalResponse": {"approved": True}},
        {"messages": [ui_message("user", text("hi"))], "onDisconnect": "never"},
        {"messages": [ui_message("user", text("hi"))], "clientMcpTools": [{"name": "no spaces allowed"}]},
        {"messages": [ui_message("user", text("hi"))], "approvalRequired": "calculator"},
        # The assistant's message last, but answering nothing: neither a turn nor an answer.
        {"messages": [ui_message("user", text("hi")), ui_message("assistant", tool_part("t1", "input-available"))]},
    ],
)
def test_seed001_bad_body_is_refused(body):
    with pytest.raises(ValidationError):
        UIChatStreamRequest.model_validate(body)


def test_seed001_client_tools_and_approvals_go_into_the_run():
    body = UIChatStreamRequest.model_validate({
        "messages": [ui_message("user", text("Where am I? Use get_location."))],
        "clientMcpTools": [{"name": "get_location", "description": "The city.", "inputSchema": {"type": "object"}}],
        "approvalRequired": ["calculator"],
    })
    request = ui_message_stream.to_run_request(body, new_conversation_id=new_conversation)
    assert request.model_dump(by_alias=True, include={"client_mcp_tools", "approval_required"}) == {
        "clientMcpTools": [{"name": "get_location", "description": "The city.", "inputSchema": {"type": "object"}}],
        "approvalRequired": ["calculator"],
    }


# --- seed 001: a follow-up that answers the waiting run --------------------------------------------
def follow_up(*assistant_parts: dict, **body) -> UIChatStreamRequest:
    """What `DefaultChatTransport` posts after `addToolApprovalResponse`/`addToolOutput`: the
    history, the assistant message last."""
    messages = [ui_message("user", text("What is 1+1?"), id="m1"), ui_message("assistant", *assistant_parts, id="msg_abc")]
    return UIChatStreamRequest.model_validate({"messages": messages, "conversationId": CONVERSATION, **body})


APPROVAL_RESPONDED = tool_part("t1", "approval-responded", approval={"id": "apr_1", "approved": True, "reason": "fine"})


@pytest.mark.parametrize(
    ("body", "run", "expected"),
    [
        pytest.param(
            follow_up({"type": "step-start"}, APPROVAL_RESPONDED), waiting(APPROVAL),
            RunAnswers(decisions=[ApprovalDecision(approval_id="apr_1", approved=True, reason="fine")]),
            id="AI SDK approval, by approval id",
        ),
        pytest.param(
            follow_up(tool_part("t1", "input-available"), approvalResponse={"toolCallId": "t1", "approved": False}),
            waiting(APPROVAL),
            RunAnswers(decisions=[ApprovalDecision(approval_id="apr_1", approved=False)]),
            id="seed 001 approvalResponse, by tool call id",
        ),
        pytest.param(
            follow_up(tool_part("t2", "output-available", output={"city": "Lisbon"})), waiting(LOCATION),
            RunAnswers(outputs=[ToolOutput(tool_call_id="t2", output={"city": "Lisbon"})]),
            id="AI SDK client tool output",
        ),
        pytest.param(
            follow_up(tool_part("t2", "output-error", errorText="No permission.")), waiting(LOCATION),
            RunAnswers(outputs=[ToolOutput(tool_call_id="t2", output="No permission.", is_error=True)]),
            id="AI SDK client tool error",
        ),
        pytest.param(
            follow_up(APPROVAL_RESPONDED, tool_part("t2", "output-available", output=1), tool_part("t9", "output-available")),
            waiting(APPROVAL, LOCATION),
            RunAnswers(outputs=[ToolOutput(tool_call_id="t2", output=1)],
                       decisions=[ApprovalDecision(approval_id="apr_1", approved=True, reason="fine")]),
            id="both kinds at once; a part the run did not ask about is ignored",
        ),
        pytest.param(
            follow_up(APPROVAL_RESPONDED), answered(APPROVAL, status=RunStatus.SUCCEEDED),
            RunAnswers(decisions=[ApprovalDecision(approval_id="apr_1", approved=True, reason="fine")]),
            id="a retry after the run moved on: the same answers, for the service to accept again",
        ),
    ],
)
def test_follow_up_answers_are_matched_to_what_the_run_asked_for(body, run, expected):
    assert waiting_conversation(body) == CONVERSATION
    assert follow_up_answers(body, run) == expected


def test_answers_in_an_older_assistant_message_do_not_count():
    # Tool call ids repeat across runs ("toolu_scripted_1"): only the last assistant message answers.
    old_answer = ui_message("assistant", tool_part("t2", "output-available", output="old"), id="a0")
    body = UIChatStreamRequest.model_validate({
        "messages": [ui_message("user", text("Where?"), id="m0"), old_answer, ui_message("user", text("1+1?"), id="m1"),
                     ui_message("assistant", APPROVAL_RESPONDED, tool_part("t2", "input-available"), id="a1")],
        "conversationId": CONVERSATION,
    })  # fmt: skip
    assert follow_up_answers(body, waiting(APPROVAL, LOCATION)) == RunAnswers(
        decisions=[ApprovalDecision(approval_id="apr_1", approved=True, reason="fine")]
    )


def test_a_new_turn_is_no_follow_up_and_needs_no_lookup():
    body = UIChatStreamRequest.model_validate(SEED001_BODY | {"approvalResponse": None})
    assert waiting_conversation(body) is None
    assert follow_up_answers(body, waiting(APPROVAL)) is None


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        pytest.param(answered(APPROVAL, status=RunStatus.SUCCEEDED), None, id="the run moved on: the turn starts a run"),
        pytest.param(None, None, id="nothing to answer: the turn starts a run"),
    ],
)
def test_a_new_turn_sent_with_seed001s_approval_response(run, expected):
    body = UIChatStreamRequest.model_validate({
        "messages": [ui_message("user", text("And 2+2?"))], "conversationId": CONVERSATION,
        "approvalResponse": {"toolCallId": "t1", "approved": True},
    })  # fmt: skip
    assert follow_up_answers(body, run) == expected


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(None, id="no run in the conversation"),
        pytest.param(a_run(status=RunStatus.SUCCEEDED), id="a run that never waited"),
        pytest.param(waiting(SECOND_APPROVAL), id="a run waiting for something else"),
    ],
)
def test_an_answer_to_nothing_waiting_is_not_waiting(run):
    with pytest.raises(NotWaitingError):
        follow_up_answers(follow_up(APPROVAL_RESPONDED), run)


def test_a_new_turn_sent_with_an_answer_to_a_waiting_run_is_refused_not_half_used():
    body = UIChatStreamRequest.model_validate({
        "messages": [ui_message("user", text("And 2+2?"))], "conversationId": CONVERSATION,
        "approvalResponse": {"toolCallId": "t1", "approved": True},
    })  # fmt: skip
    with pytest.raises(InvalidRequestError, match="without a new user message"):
        follow_up_answers(body, waiting(APPROVAL))


def test_an_answer_without_its_conversation_names_its_run_from_the_message_metadata():
    body = follow_up(APPROVAL_RESPONDED, conversationId=None)
    assert waiting_conversation(body) is None
    body.messages[-1].metadata = {"runId": "run_abc"}
    assert answered_run_id(body) == "run_abc"
    assert answered_run_id(UIChatStreamRequest.model_validate(SEED001_BODY)) is None  # a new turn names none


@pytest.mark.parametrize(
    "part",
    [
        pytest.param({"type": "tool-calculator", "state": "output-available", "output": 1}, id="no toolCallId"),
        pytest.param(tool_part("t1", "approval-responded", approval={"id": "apr_1", "approved": "yes"}), id="approved not a bool"),
        pytest.param(tool_part("t1", "approval-responded", approval={"id": "apr_1", "approved": False, "reason": "x" * 2001}),
                     id="reason too long"),
    ],
)  # fmt: skip
def test_a_malformed_answer_is_a_client_error(part):
    with pytest.raises(InvalidRequestError):
        follow_up_answers(follow_up(part), waiting(APPROVAL))


def test_seed002_body_picks_the_agent_by_id_and_remembers_the_session():
    body = AgentChatRequest.model_validate({"agent_id": "ag_summarizer", "message": "Sum this up", "session_id": "s-1"})
    request = chat_events.to_run_request(body, default_catalog())
    assert (request.task, request.agent_role, request.conversation_id) == ("Sum this up", "summarizer", "s-1")
    no_session = AgentChatRequest.model_validate({"agent_id": "ag_chat", "message": "Hello"})
    assert chat_events.to_run_request(no_session, default_catalog()).conversation_id is None


def test_seed002_unknown_agent_is_left_to_raise():
    body = AgentChatRequest.model_validate({"agent_id": "ag_c47e7c97_b2f2", "message": "Hello"})
    with pytest.raises(UnknownAgentError):
        chat_events.to_run_request(body, default_catalog())


def test_seed002_blank_message_is_a_client_error():
    body = AgentChatRequest.model_validate({"agent_id": "ag_chat", "message": "   "})
    with pytest.raises(InvalidRequestError):
        chat_events.to_run_request(body, default_catalog())


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": "Hello"},
        {"agent_id": "ag_chat"},
        {"agent_id": 7, "message": "Hello"},
        {"agent_id": "chat", "message": "Hello"},
        {"agent_id": "ag_chat", "message": 7},
        {"agent_id": "ag_chat", "message": ""},
        {"agent_id": "ag_chat", "message": "Hello", "session_id": 12},
        {"agent_id": "ag_chat", "message": "Hello", "session_id": "has#hash"},
    ],
)
def test_seed002_bad_body_is_refused(body):
    with pytest.raises(ValidationError):
        AgentChatRequest.model_validate(body)


def test_seed003_body_keeps_its_conversation_or_starts_one():
    given_id = ContentChatRequest.model_validate({"message": "Hello", "conversation_id": "conv-1"})
    assert content_final.to_run_request(given_id, new_conversation_id=new_conversation).model_dump(
        by_alias=True, exclude_none=True
    ) == {"task": "Hello", "agentRole": "chat", "conversationId": "conv-1", "multitaskStrategy": "enqueue"}
    fresh = ContentChatRequest.model_validate({"message": "Hello"})
    assert content_final.to_run_request(fresh, new_conversation_id=new_conversation).conversation_id == NEW_CONVERSATION


def test_seed003_blank_message_is_a_client_error():
    with pytest.raises(InvalidRequestError):
        content_final.to_run_request(
            ContentChatRequest.model_validate({"message": " "}), new_conversation_id=new_conversation
        )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"conversation_id": "conv-1"},
        {"message": 42},
        {"message": None},
        {"message": ""},
        {"message": "Hello", "conversation_id": 42},
        {"message": "Hello", "conversation_id": "has#hash"},
    ],
)
def test_seed003_bad_body_is_refused(body):
    with pytest.raises(ValidationError):
        ContentChatRequest.model_validate(body)


def test_seed003_run_response_has_the_seed_shape():
    assert ChatRunResponse(response="Hi!", conversation_id="conv-1").model_dump() == {
        "response": "Hi!",
        "conversation_id": "conv-1",
    }


def test_default_conversation_factory_matches_seed001_pattern():
    body = {"messages": [ui_message("user", text("hi"))], "conversationId": new_conversation_id()}
    assert UIChatStreamRequest.model_validate(body).conversation_id == body["conversationId"]


def test_the_chat_id_we_echo_is_accepted_back_as_conversation_id():
    """`x-conversation-id` echoes the AI SDK's chat id (not a uuid) when the body named no
    conversationId: a client that sends it back as `conversationId` continues that conversation."""
    echoed = UIChatStreamRequest.model_validate({"messages": [ui_message("user", text("hi"))], "id": "aB3dE5gH7jK9mN1p"})
    assert echoed.conversation == "aB3dE5gH7jK9mN1p"
    sent_back = UIChatStreamRequest.model_validate(
        {"messages": [ui_message("user", text("hi"))], "conversationId": echoed.conversation})
    assert sent_back.conversation == "aB3dE5gH7jK9mN1p"


def test_a_chat_id_that_is_not_an_identifier_starts_a_new_conversation():
    for bad in ("abc\n", "has space", "#hash", "x" * 129):
        body = UIChatStreamRequest.model_validate({"messages": [ui_message("user", text("hi"))], "id": bad})
        assert body.conversation is None, bad
