"""The scripted model continues a cut-off answer with exactly the rest of it."""

from __future__ import annotations

import time

import pytest

from runwire.adapters.scripted_provider import ScriptedProvider
from runwire.core.cancellation import CancellationToken
from runwire.core.ports import ModelEvent, ModelRequest, TextDelta, TurnEnded, UsageUpdated
from runwire.core.tools import calculator_tool
from runwire.core.transcript import Message, TextBlock, ToolCallBlock, ToolResultBlock
from runwire.errors import ModelStreamInterruptedError

TASK = "How do I plan a small garden?"


def call(messages: list[Message], **request: object) -> tuple[list[ModelEvent], BaseException | None]:
    events: list[ModelEvent] = []
    try:
        stream = ScriptedProvider(time.time, token_delay_seconds=0).stream(
            ModelRequest("scripted-1", "", messages, **request), CancellationToken()  # type: ignore[arg-type]
        )
        for event in stream:
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def text_of(events: list[ModelEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def asked(task: str = TASK) -> list[Message]:
    return [Message("user", (TextBlock(task),))]


def cut_off(messages: list[Message], partial: str) -> list[Message]:
    return [*messages, Message("assistant", (TextBlock(partial),))]


def full_reply(messages: list[Message], **request: object) -> str:
    events, error = call(messages, **request)
    assert error is None
    return text_of(events)


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda reply: reply[: reply.index(" First")], id="at-a-token-boundary"),
        pytest.param(lambda reply: reply[: reply.index(" First") + 1], id="after-a-trailing-space"),
        pytest.param(lambda reply: reply[: reply.index(" First") + 4], id="inside-a-word"),
        pytest.param(lambda reply: reply[:-1], id="one-character-short"),
    ],
)
def test_a_continuation_streams_exactly_the_rest_of_the_reply(cut):
    reply = full_reply(asked())
    partial = cut(reply)

    events, error = call(cut_off(asked(), partial))

    assert error is None
    assert partial + text_of(events) == reply
    assert isinstance(events[-1], TurnEnded) and events[-1].stop_reason == "end_turn"


def test_output_usage_counts_only_what_the_continuation_streams():
    reply = full_reply(asked())
    partial = reply[: reply.index(" Second")]

    events, _ = call(cut_off(asked(), partial))

    deltas = [event for event in events if isinstance(event, TextDelta)]
    usage = [event for event in events if isinstance(event, UsageUpdated)]
    assert usage[-1].output_tokens == len(deltas) == len(reply[len(partial) :].split())


def test_an_answer_cut_by_a_scripted_failure_is_continued_to_its_end():
    task = asked("[[scripted tokens=10 fail=interrupted after=4]]")
    first, error = call(task)
    assert isinstance(error, ModelStreamInterruptedError)
    assert text_of(first) == " 1 2 3 4"

    rest, error = call(cut_off(task, text_of(first)))

    assert error is None
    assert text_of(rest) == " 5 6 7 8 9 10"


def test_a_failure_at_the_first_token_fails_every_call():
    task = asked("[[scripted tokens=10 fail=overloaded after=0]]")

    for messages in (task, cut_off(task, "   ")):
        events, error = call(messages)
        assert error is not None and text_of(events) == ""


def test_an_answer_about_tool_results_is_continued_not_answered_with_a_new_tool_call():
    calculator = calculator_tool()
    messages = [
        *asked("What is 6*7?"),
        Message("assistant", (ToolCallBlock("toolu_1", "calculator", {"expression": "6*7"}),)),
        Message("user", (ToolResultBlock("toolu_1", {"expression": "6*7", "result": 42}),)),
    ]
    reply = full_reply(messages, tools=[calculator.spec])
    partial = reply[: len(reply) // 2]

    events, error = call(cut_off(messages, partial), tools=[calculator.spec])

    assert error is None
    assert partial + text_of(events) == reply


def test_text_that_differs_from_the_reply_is_continued_after_what_they_share():
    reply = full_reply(asked())
    shared = reply[: reply.index(" First")]

    events, _ = call(cut_off(asked(), shared + "!"))

    assert text_of(events) == reply[len(shared) :]
