"""The neutral transcript in the Messages API's shape: what the API accepts."""

import pytest

from runwire.adapters.anthropic_provider import CONTINUE_PROMPT, anthropic_messages, retry_after_seconds
from runwire.core.transcript import ImageBlock, Message, TextBlock, ToolCallBlock, ToolResultBlock


def test_a_whitespace_text_block_before_a_tool_call_is_not_sent():
    # The API answers 400 to text blocks of only whitespace.
    assistant = Message("assistant", (TextBlock("\n\n"), ToolCallBlock("t1", "calculator", {"expression": "1+1"})))
    (sent,) = anthropic_messages([assistant])
    assert sent == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "calculator", "input": {"expression": "1+1"}}]}


def test_results_denials_and_images_translate_to_their_blocks():
    results = Message("user", (
        ToolResultBlock("t1", {"result": 2}),
        ToolResultBlock("t2", {"denied": True, "reason": "no"}, is_error=True),
        ToolResultBlock("t3", "plain text"),
    ))
    question = Message("user", (ImageBlock(url="https://example.com/a.png"), TextBlock("What is this?")))
    sent_results, sent_question = anthropic_messages([results, question])
    assert sent_results["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": '{"result": 2}', "is_error": False},
        {"type": "tool_result", "tool_use_id": "t2", "content": "denied: no", "is_error": True},
        {"type": "tool_result", "tool_use_id": "t3", "content": "plain text", "is_error": False},
    ]
    assert sent_question["content"][0] == {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}


# --- continuing a cut-off answer ----------------------------------------------------------------
QUESTION = Message("user", (TextBlock("Tell me a story."),))


def test_a_cut_off_answer_is_sent_as_a_prefill_without_its_trailing_whitespace():
    sent = anthropic_messages([QUESTION, Message("assistant", (TextBlock("Once upon a time \n"),))])

    assert sent == [
        {"role": "user", "content": "Tell me a story."},
        {"role": "assistant", "content": "Once upon a time"},
    ]


def test_a_cut_off_answer_of_only_whitespace_is_not_sent():
    sent = anthropic_messages([QUESTION, Message("assistant", (TextBlock("\n\n"),))])

    assert sent == [{"role": "user", "content": "Tell me a story."}]


def test_without_prefill_a_user_message_asks_for_the_rest_after_the_cut_off_answer():
    sent = anthropic_messages([QUESTION, Message("assistant", (TextBlock("Once upon a time "),))], prefill=False)

    assert sent == [
        {"role": "user", "content": "Tell me a story."},
        {"role": "assistant", "content": "Once upon a time"},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


def test_a_transcript_that_is_not_a_continuation_is_sent_as_it_is_in_either_shape():
    answered = Message("user", (ToolResultBlock("t1", {"result": 2}),))
    transcript = [QUESTION, Message("assistant", (ToolCallBlock("t1", "calculator", {"expression": "1+1"}),)), answered]

    assert anthropic_messages(transcript, prefill=False) == anthropic_messages(transcript)
    assert anthropic_messages(transcript)[-1]["role"] == "user"


# --- retry-after --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"retry-after-ms": "1500", "retry-after": "9"}, 1.5, id="milliseconds-win"),
        pytest.param({"retry-after": "7"}, 7.0, id="seconds"),
        pytest.param({"retry-after": "0.25"}, 0.25, id="fractional-seconds"),
        pytest.param({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0, id="http-date"),
        pytest.param({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0, id="http-date-past"),
        pytest.param({"retry-after": "soon"}, None, id="unreadable"),
        pytest.param({"retry-after-ms": "nan"}, None, id="not-finite"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_retry_after_is_read_from_the_response_headers(headers, seconds):
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT

    assert retry_after_seconds(headers, now=now) == seconds
