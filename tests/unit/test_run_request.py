"""Seed 000's body: every field accepted, every wrong type refused."""

import pytest
from pydantic import ValidationError

from runwire.core.models import RunRequest

FULL = {
    "task": "Summarise the latest TechCrunch article on the link.",
    "agentRole": "chat",
    "agentInstructions": "Be brief.",
    "conversationHistory": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    "conversationId": "conv-123",
    "context": {"aiMode": "auto"},
    "settings": {"model": "claude-x", "maxTokens": 500, "temperature": 0.2},
    "memoryTtl": 3600,
    "clientMcpTools": [{"name": "browser.open", "description": "Open a tab", "inputSchema": {"type": "object"}}],
    "availableTools": ["calculator"],
    "files": [{"path": "uploads/report.pdf", "name": "report.pdf"}],
    "images": [{"url": "https://example.com/a.png"}, {"data": "aGVsbG8=", "mimeType": "image/png"}],
}


def test_seed000_full_body_is_accepted():
    request = RunRequest.model_validate(FULL)
    assert request.agent_role == "chat"
    assert request.settings and request.settings.max_tokens == 500


def test_agent_role_defaults_to_chat():
    assert RunRequest.model_validate({"task": "x"}).agent_role == "chat"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"task": ""},
        {"task": "   "},
        {"task": 42},
        {"task": "x", "agentRole": 7},
        {"task": "x", "conversationHistory": "not a list"},
        {"task": "x", "conversationHistory": [{"role": "robot", "content": "hi"}]},
        {"task": "x", "conversationId": "has#hash"},
        {"task": "x", "context": []},
        {"task": "x", "settings": {"temperature": "hot"}},
        {"task": "x", "settings": {"unknownKnob": 1}},
        {"task": "x", "settings": {"temperature": 0.5, "topP": 0.9}},
        {"task": "x", "memoryTtl": "3600"},
        {"task": "x", "memoryTtl": -1},
        {"task": "x", "clientMcpTools": [{"description": "no name"}]},
        {"task": "x", "availableTools": "calculator"},
        {"task": "x", "files": [{"name": "no path"}]},
        {"task": "x", "images": [{}]},
        {"task": "x", "images": [{"data": "abc"}]},
        {"task": "x", "images": [{"url": "u", "data": "d", "mimeType": "image/png"}]},
    ],
)
def test_wrong_shapes_are_refused(body):
    with pytest.raises(ValidationError):
        RunRequest.model_validate(body)


def nested(depth):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_free_form_json_may_nest_32_levels_but_not_deeper():
    RunRequest.model_validate({"task": "x", "context": nested(31)})
    for body in ({"task": "x", "context": nested(40)},
                 {"task": "x", "clientMcpTools": [{"name": "t", "inputSchema": nested(300)}]}):
        with pytest.raises(ValidationError, match="nests deeper"):
            RunRequest.model_validate(body)
