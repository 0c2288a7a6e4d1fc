"""Seed 001's tool loop on the local stack: approvals and client tools over the AI SDK surface.

The first half drives the loop with the npm `ai` package itself (`tests/js/ai_sdk_tools.mjs`: the
package's `AbstractChat` over `DefaultChatTransport`, answering with `addToolApprovalResponse` and
`addToolOutput`); the second speaks seed 001's own follow-up, `approvalResponse: {toolCallId,
approved}`, over plain HTTP, and checks what a follow-up that answers nothing gets.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from .test_js_clients import chat, missing_js_tooling, node_json, require

CHAT_STREAM = "/api/agent/chat/stream"
LOCATION_TOOL = {
    "name": "get_location",
    "description": "The user's current city, from the browser.",
    "inputSchema": {"type": "object", "properties": {}},
}
LISBON = {"city": "Lisbon", "country": "Portugal"}


def sdk_chat(stack, mode: str, **args: Any) -> dict[str, Any]:
    require(missing_js_tooling())
    return node_json(stack, "ai_sdk_tools.mjs", mode, json.dumps(args))


def posted_chunks(exchange: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks of one recorded response body; asserts it ends the SDK's way, with `[DONE]`."""
    datas = [block.removeprefix("data: ") for block in exchange["body"].split("\n\n") if block.startswith("data: ")]
    assert datas[-1] == "[DONE]", exchange["body"][-300:]
    return [json.loads(data) for data in datas[:-1]]


def only_tool_part(message: dict[str, Any]) -> dict[str, Any]:
    (part,) = message["toolParts"]
    return part


# --- the AI SDK's own chat ---------------------------------------------------------------------------
def test_ai_sdk_chat_approves_the_calculator_and_gets_391_in_the_same_assistant_message(stack):
    result = sdk_chat(stack, "approval", text="What is 17 * 23?", conversationId=str(uuid.uuid4()),
                      approved=True, body={"approvalRequired": ["calculator"]})

    waiting = only_tool_part(result["waiting"])
    assert waiting["state"] == "approval-requested", waiting
    assert waiting["approval"]["id"] == result["approvalId"] and result["approvalId"].startswith("apr_")
    assert waiting["input"] == {"expression": "17 * 23"}
    assert result["finishes"][0]["finishReason"] == "tool-calls"
    assert result["finishes"][0]["message"]["metadata"]["status"] == "requires_action"

    assert result["status"] == "ready" and result["error"] is None
    assert result["messageRoles"] == ["user", "assistant"], "the answer continued the same assistant message"
    final = result["final"]
    assert final["id"] == result["waiting"]["id"]
    tool = only_tool_part(final)
    assert tool["state"] == "output-available", tool
    assert tool["output"]["result"] == 391
    assert final["text"].startswith("17 * 23 = 391."), final["text"]
    assert final["metadata"]["status"] == "succeeded"


def test_ai_sdk_chat_sends_the_approval_as_its_next_request_and_the_reply_restarts_the_message(stack):
    result = sdk_chat(stack, "approval", text="What is 17 * 23?", conversationId=str(uuid.uuid4()),
                      approved=True, body={"approvalRequired": ["calculator"]})

    first, follow_up = result["exchanges"]
    assert [first["status"], follow_up["status"]] == [200, 200]
    first_chunks = posted_chunks(first)
    assert [c["type"] for c in first_chunks][-4:] == [
        "tool-input-available", "tool-approval-request", "finish-step", "finish"
    ]
    request = first_chunks[-3]
    assert request == {"type": "tool-approval-request", "approvalId": result["approvalId"],
                       "toolCallId": first_chunks[-4]["toolCallId"]}

    sent = follow_up["requestBody"]
    assert sent["trigger"] == "submit-message" and sent["messages"][-1]["role"] == "assistant"
    answered = next(p for p in sent["messages"][-1]["parts"] if p.get("toolCallId") == request["toolCallId"])
    assert answered["state"] == "approval-responded"
    assert answered["approval"]["id"] == result["approvalId"] and answered["approval"]["approved"] is True

    continuation = posted_chunks(follow_up)
    kinds = [c["type"] for c in continuation]
    assert continuation[0]["type"] == "start" and continuation[0]["messageId"] == result["waiting"]["id"]
    assert kinds[1] == "tool-output-available" and kinds[2] == "start-step", kinds
    assert kinds.count("finish") == 1 and kinds[-1] == "finish"
    assert follow_up["headers"]["x-vercel-ai-ui-message-stream"] == "v1"


def test_ai_sdk_chat_denial_ends_in_output_denied_and_an_answer_without_the_tool(stack):
    result = sdk_chat(stack, "approval", text="What is 17 * 23?", conversationId=str(uuid.uuid4()),
                      approved=False, reason="Not today.", body={"approvalRequired": ["calculator"]})

    assert result["status"] == "ready" and result["error"] is None
    final = result["final"]
    tool = only_tool_part(final)
    assert tool["state"] == "output-denied", tool
    assert tool["approval"]["approved"] is False
    assert final["text"].startswith("I did not run that tool: denied: Not today."), final["text"]
    assert "391" not in final["text"]
    assert "tool-output-denied" in [c["type"] for c in posted_chunks(result["exchanges"][-1])]


def test_ai_sdk_chat_runs_a_client_tool_in_on_tool_call_and_the_answer_uses_its_output(stack):
    result = sdk_chat(stack, "client-tool", text="Where am I? Use get_location.", conversationId=str(uuid.uuid4()),
                      toolName="get_location", output=LISBON, body={"clientMcpTools": [LOCATION_TOOL]})

    assert result["status"] == "ready" and result["error"] is None
    assert [call["toolName"] for call in result["calls"]] == ["get_location"], "the client ran it"
    assert [f["finishReason"] for f in result["finishes"]] == ["tool-calls", "stop"]
    assert result["messageRoles"] == ["user", "assistant"]
    final = result["final"]
    tool = only_tool_part(final)
    assert tool["type"] == "tool-get_location" and tool["providerExecuted"] is None
    assert tool["state"] == "output-available" and tool["output"] == LISBON
    assert "Lisbon" in final["text"] and "Portugal" in final["text"], final["text"]
    first, follow_up = result["exchanges"]
    tool_input = next(c for c in posted_chunks(first) if c["type"] == "tool-input-available")
    assert "providerExecuted" not in tool_input
    assert posted_chunks(follow_up)[0]["messageId"] == final["id"]


def test_ai_sdk_chat_client_tool_error_comes_back_as_output_error(stack):
    result = sdk_chat(stack, "client-tool", text="Where am I? Use get_location.", conversationId=str(uuid.uuid4()),
                      toolName="get_location", errorText="Location permission denied.",
                      body={"clientMcpTools": [LOCATION_TOOL]})

    assert result["status"] == "ready" and result["error"] is None
    final = result["final"]
    tool = only_tool_part(final)
    assert tool["state"] == "output-error" and tool["errorText"] == "Location permission denied.", tool
    assert "Location permission denied." in final["text"], final["text"]
    assert {"type": "tool-output-error", "toolCallId": tool["toolCallId"], "errorText": "Location permission denied."} in (
        posted_chunks(result["exchanges"][-1])
    )


def test_replay_of_an_answered_run_rebuilds_the_message_the_chat_ended_with(stack):
    live = sdk_chat(stack, "approval", text="What is 17 * 23?", conversationId=str(uuid.uuid4()),
                    approved=True, body={"approvalRequired": ["calculator"]})
    run_id = live["final"]["metadata"]["runId"]

    replay = sdk_chat(stack, "replay", path=f"/v1/runs/{run_id}/stream?format=ui-message-stream")

    assert replay["errors"] == []
    message, final = replay["message"], live["final"]
    assert (message["id"], message["partTypes"], message["text"]) == (final["id"], final["partTypes"], final["text"])
    tool = only_tool_part(message)
    assert tool["state"] == "output-available" and tool["output"]["result"] == 391
    assert tool["approval"] == {"id": live["approvalId"]}, "the replay shows the approval it waited for"
    assert message["metadata"]["status"] == "succeeded"


# --- seed 001's own follow-up: approvalResponse ------------------------------------------------------
def user(text: str) -> dict[str, Any]:
    return {"id": f"u-{uuid.uuid4().hex[:8]}", "role": "user", "parts": [{"type": "text", "text": text}]}


def post_chat(stack, client: httpx.Client, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    response = client.post(f"{stack.base_url}{CHAT_STREAM}", json=body, headers=stack.headers())
    if response.status_code != 200:
        return response, []
    return response, posted_chunks({"body": response.text})


def waiting_for_approval(stack, client, conversation: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seed 001's first turn with an approval gate: the messages so far and the response's chunks."""
    question = user("What is 17 * 23?")
    response, chunks = post_chat(stack, client, {"messages": [question], "conversationId": conversation,
                                                 "approvalRequired": ["calculator"]})
    assert response.status_code == 200, response.text
    call = next(c for c in chunks if c["type"] == "tool-input-available")
    assistant = {"id": chunks[0]["messageId"], "role": "assistant", "parts": [
        {"type": "step-start"},
        {"type": "tool-calculator", "toolCallId": call["toolCallId"], "state": "input-available", "input": call["input"]},
    ]}
    return [question, assistant], chunks


def test_seed001_approval_response_resumes_the_waiting_run_as_the_same_message(stack, client):
    conversation = str(uuid.uuid4())
    messages, first = waiting_for_approval(stack, client, conversation)
    assert first[-1] == {"type": "finish", "finishReason": "tool-calls",
                         "messageMetadata": {"status": "requires_action"}}
    call_id = messages[-1]["parts"][1]["toolCallId"]

    response, chunks = post_chat(stack, client, {"messages": messages, "conversationId": conversation,
                                                 "approvalResponse": {"toolCallId": call_id, "approved": True}})

    assert response.status_code == 200, response.text
    assert response.headers["x-conversation-id"] == conversation
    assert chunks[0] == {"type": "start", "messageId": first[0]["messageId"],
                         "messageMetadata": first[0]["messageMetadata"]}
    assert chunks[1]["type"] == "tool-output-available" and chunks[1]["output"]["result"] == 391
    assert "391" in "".join(c.get("delta", "") for c in chunks)
    assert chunks[-1]["finishReason"] == "stop" and chunks[-1]["messageMetadata"]["status"] == "succeeded"


def test_seed001_resume_while_the_run_waits_rebuilds_the_approval_request_and_ends(stack, client):
    conversation = str(uuid.uuid4())
    messages, first = waiting_for_approval(stack, client, conversation)

    require(missing_js_tooling())
    result = chat(stack, "reconnect", conversationId=conversation)

    resumed = result["resumed"]
    assert resumed is not None and resumed["errors"] == []
    assert resumed["id"] == first[0]["messageId"]
    assert [p["state"] for p in resumed["toolParts"]] == ["approval-requested"]
    assert resumed["chunkTypes"][-2:] == ["finish-step", "finish"]
    assert resumed["metadata"]["status"] == "requires_action"
    assert result["responses"][0]["bodyTail"].endswith("data: [DONE]\n\n")


def test_seed001_same_approval_sent_twice_streams_the_same_continuation(stack, client):
    conversation = str(uuid.uuid4())
    messages, _ = waiting_for_approval(stack, client, conversation)
    body = {"messages": messages, "conversationId": conversation,
            "approvalResponse": {"toolCallId": messages[-1]["parts"][1]["toolCallId"], "approved": False}}

    first_response, first = post_chat(stack, client, body)
    retry_response, retry = post_chat(stack, client, body)

    assert (first_response.status_code, retry_response.status_code) == (200, 200), retry_response.text
    assert first == retry
    assert [c["type"] for c in first][:2] == ["start", "tool-output-denied"]


def test_seed001_changing_an_answer_already_given_is_409_not_waiting(stack, client):
    conversation = str(uuid.uuid4())
    messages, _ = waiting_for_approval(stack, client, conversation)
    call_id = messages[-1]["parts"][1]["toolCallId"]
    answered, _ = post_chat(stack, client, {"messages": messages, "conversationId": conversation,
                                            "approvalResponse": {"toolCallId": call_id, "approved": True}})
    assert answered.status_code == 200

    response, _ = post_chat(stack, client, {"messages": messages, "conversationId": conversation,
                                            "approvalResponse": {"toolCallId": call_id, "approved": False}})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_waiting"


@pytest.mark.parametrize("with_history", [False, True])
def test_seed001_approval_for_a_conversation_with_nothing_waiting_is_409(stack, client, with_history):
    conversation = str(uuid.uuid4())
    if with_history:  # a finished run: nothing of it is waiting
        done, _ = post_chat(stack, client, {"messages": [user("Hello")], "conversationId": conversation})
        assert done.status_code == 200
    assistant = {"id": "a1", "role": "assistant", "parts": [
        {"type": "tool-calculator", "toolCallId": "toolu_x", "state": "input-available", "input": {}}]}

    response, _ = post_chat(stack, client, {"messages": [user("What is 1+1?"), assistant], "conversationId": conversation,
                                            "approvalResponse": {"toolCallId": "toolu_x", "approved": True}})

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "not_waiting"


def test_seed001_a_new_user_turn_with_a_stale_approval_response_starts_a_new_run(stack, client):
    conversation = str(uuid.uuid4())

    response, chunks = post_chat(stack, client, {"messages": [user("Hello")], "conversationId": conversation,
                                                 "approvalResponse": {"toolCallId": "toolu_old", "approved": True}})

    assert response.status_code == 200, response.text
    assert chunks[-1]["finishReason"] == "stop"
    assert "".join(c.get("delta", "") for c in chunks).startswith('Here is a short answer about "Hello".')


def test_an_answer_without_a_conversation_id_finds_its_run_from_the_message_metadata(stack, client):
    # An app that lets the server make up the conversation never learns its id (it is only in a
    # header useChat does not expose); the assistant message it answers carries the run id.
    question = user("What is 17 * 23?")
    response, chunks = post_chat(stack, client, {"messages": [question], "approvalRequired": ["calculator"]})
    assert response.status_code == 200, response.text
    call = next(c for c in chunks if c["type"] == "tool-input-available")
    approval = next(c for c in chunks if c["type"] == "tool-approval-request")
    assistant = {"id": chunks[0]["messageId"], "role": "assistant", "metadata": chunks[0]["messageMetadata"], "parts": [
        {"type": "step-start"},
        {"type": "tool-calculator", "toolCallId": call["toolCallId"], "state": "approval-responded",
         "input": call["input"], "approval": {"id": approval["approvalId"], "approved": True}},
    ]}
    response, continued = post_chat(stack, client, {"messages": [question, assistant]})
    assert response.status_code == 200, response.text
    assert continued[0]["messageId"] == chunks[0]["messageId"]
    assert any(c["type"] == "tool-output-available" and c["output"]["result"] == 391 for c in continued)


def test_seed001_answering_one_of_two_approvals_asks_again_for_the_other(stack, client):
    conversation = str(uuid.uuid4())
    question = user("What is 6 * 7, and what time is it today?")
    response, first = post_chat(stack, client, {"messages": [question], "conversationId": conversation,
                                                "approvalRequired": ["calculator", "current_time"]})
    assert response.status_code == 200, response.text
    requests = [c for c in first if c["type"] == "tool-approval-request"]
    assert len(requests) == 2
    calls = {c["toolCallId"]: c for c in first if c["type"] == "tool-input-available"}
    assistant = {"id": first[0]["messageId"], "role": "assistant", "parts": [{"type": "step-start"}] + [
        {"type": f"tool-{c['toolName']}", "toolCallId": c["toolCallId"], "state": "input-available", "input": c["input"]}
        for c in calls.values()
    ]}
    first_call, second_call = (r["toolCallId"] for r in requests)

    response, partly = post_chat(stack, client, {"messages": [question, assistant], "conversationId": conversation,
                                                 "approvalResponse": {"toolCallId": first_call, "approved": True}})
    assert response.status_code == 200, response.text
    asked_again = [c for c in partly if c["type"] == "tool-approval-request"]
    assert [c["toolCallId"] for c in asked_again] == [second_call], "only what is still unanswered"
    assert partly[-1]["finishReason"] == "tool-calls"

    response, rest = post_chat(stack, client, {"messages": [question, assistant], "conversationId": conversation,
                                               "approvalResponse": {"toolCallId": second_call, "approved": False}})
    assert response.status_code == 200, response.text
    kinds = [c["type"] for c in rest]
    assert "tool-output-available" in kinds and "tool-output-denied" in kinds
    assert rest[-1]["finishReason"] == "stop"


def test_seed001_a_new_message_sent_with_an_answer_to_a_waiting_run_is_refused(stack, client):
    conversation = str(uuid.uuid4())
    messages, _ = waiting_for_approval(stack, client, conversation)
    call_id = messages[-1]["parts"][1]["toolCallId"]
    response, _ = post_chat(stack, client, {"messages": [*messages, user("And 2+2?")], "conversationId": conversation,
                                            "approvalResponse": {"toolCallId": call_id, "approved": True}})
    assert response.status_code == 400 and "without a new user message" in response.json()["error"]["message"]
    still = client.get(f"{stack.base_url}/api/agent/chat/{conversation}/stream", headers=stack.headers())
    assert '"tool-approval-request"' in still.text, "the run still waits, its answer not half taken"


def test_an_approval_answered_after_a_newer_message_continues_the_run_that_asked(stack, client):
    # A run waiting for approval does not hold its conversation: the user writes something else
    # first, and only then approves. The answered message's metadata names the waiting run.
    conversation = str(uuid.uuid4())
    question = user("What is 17 * 23?")
    response, chunks = post_chat(stack, client, {"messages": [question], "conversationId": conversation,
                                                 "approvalRequired": ["calculator"]})
    assert response.status_code == 200, response.text
    call = next(c for c in chunks if c["type"] == "tool-input-available")
    approval = next(c for c in chunks if c["type"] == "tool-approval-request")
    response, newer = post_chat(stack, client, {"messages": [user("Hello")], "conversationId": conversation})
    assert response.status_code == 200 and newer[-1]["finishReason"] == "stop"
    assistant = {"id": chunks[0]["messageId"], "role": "assistant", "metadata": chunks[0]["messageMetadata"], "parts": [
        {"type": "step-start"},
        {"type": "tool-calculator", "toolCallId": call["toolCallId"], "state": "approval-responded",
         "input": call["input"], "approval": {"id": approval["approvalId"], "approved": True}},
    ]}
    response, continued = post_chat(stack, client, {"messages": [question, assistant], "conversationId": conversation})
    assert response.status_code == 200, response.text
    assert continued[0]["messageId"] == chunks[0]["messageId"]
    assert any(c["type"] == "tool-output-available" and c["output"]["result"] == 391 for c in continued)
