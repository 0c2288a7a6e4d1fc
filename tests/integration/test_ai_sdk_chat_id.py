"""The AI SDK chat's own id, through the npm `ai` package's DefaultChatTransport on the local stack:
a chat that sends no `conversationId` is the conversation named by its `id` (what `useChat({id})`
sends on every request), and the SDK's default resume URL, `{api}/{id}/stream`, resumes it
(issue 12, point 2)."""

from __future__ import annotations

import random
import string
import uuid

import pytest

from .test_js_clients import chat, is_uuid, missing_js_tooling, numbered, require


@pytest.fixture(autouse=True)
def js_tooling():
    require(missing_js_tooling())


def sdk_chat_id() -> str:
    """Shaped like the SDK's `generateId()`: 16 letters and digits."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=16))


def test_a_chat_without_a_conversation_id_is_the_conversation_of_its_sdk_id(stack, client):
    chat_id = sdk_chat_id()

    result = chat(stack, "turns", texts=["My name is Alex."], chatId=chat_id)

    turn = result["turns"][0]
    assert turn["response"]["headers"].get("x-conversation-id") == chat_id
    remembered = client.get(f"{stack.base_url}/v1/conversations/{chat_id}/messages", headers=stack.headers())
    assert remembered.status_code == 200, remembered.text
    assert [m["role"] for m in remembered.json()["messages"]] == ["user", "assistant"]
    assert remembered.json()["messages"][0]["content"] == "My name is Alex."


def test_the_sdk_default_resume_url_rebuilds_the_in_flight_message_and_is_204_after_it(stack):
    chat_id = sdk_chat_id()

    result = chat(stack, "resume", text="[[scripted tokens=30 delay_ms=60]]", chatId=chat_id, defaultResumeUrl=True)

    resume_gets = [r for r in result["responses"] if r["method"] == "GET"]
    assert resume_gets[0]["url"].endswith(f"/api/agent/chat/stream/{chat_id}/stream"), resume_gets
    assert result["inFlightAtResume"], "the resume GET answered only after the original stream had finished"
    resumed = result["resumed"]
    assert resumed is not None and resumed["errors"] == [], resume_gets
    assert resumed["text"] == result["original"]["text"] == numbered(30)
    assert result["afterFinish"] is None and resume_gets[-1]["status"] == 204


def test_a_conversation_id_in_the_body_wins_over_the_sdk_id(stack):
    conversation_id = str(uuid.uuid4())

    result = chat(stack, "send", text="Hello", conversationId=conversation_id, chatId=sdk_chat_id())

    assert result["response"]["headers"].get("x-conversation-id") == conversation_id


def test_a_chat_id_that_cannot_name_a_conversation_starts_a_new_one(stack):
    result = chat(stack, "send", text="Hello", chatId="chat/with#hash")

    assert is_uuid(result["response"]["headers"].get("x-conversation-id")), result["response"]["headers"]
