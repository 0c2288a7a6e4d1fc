"""The neutral transcript in the Messages API's shape: what the API accepts."""

from runwire.adapters.anthropic_provider import anthropic_messages
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
