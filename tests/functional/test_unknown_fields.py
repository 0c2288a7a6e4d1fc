"""Unknown fields are errors on the /v1 routes and ignored on the client surfaces (issue 12, point 2),
in process over the in-memory fakes."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from runwire.http.unknown_fields import is_canonical

from .in_memory_apps import bearer, in_memory_apps


@pytest.fixture(scope="module")
def apps():
    return in_memory_apps()


@pytest.fixture(scope="module")
def api(apps):
    with TestClient(apps[0]) as client:
        yield client


def refused(response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    return error["message"]


def test_a_misspelt_field_is_refused_naming_it_and_starts_nothing(api):
    before = api.get("/v1/conversations/conv-typo/messages", headers=bearer()).json()

    message = refused(api.post("/v1/runs", json={"task": "Hi", "agentrole": "support",
                                                   "conversationId": "conv-typo"}, headers=bearer()))

    assert message.startswith("agentrole: unknown field"), message
    assert api.get("/v1/conversations/conv-typo/messages", headers=bearer()).json() == before


def test_an_unknown_nested_field_is_refused_with_its_path(api):
    message = refused(api.post("/v1/runs", json={"task": "Hi", "settings": {"maxTokens": 10, "foo": 1},
                                                   "conversationHistory": [{"role": "user", "content": "a", "name": "x"}]},
                               headers=bearer()))

    assert "settings.foo: unknown field" in message
    assert "conversationHistory.0.name: unknown field" in message


def test_free_form_objects_stay_free_form(api):
    response = api.post("/v1/runs", json={"task": "Hi", "context": {"anything": {"goes": True}},
                                           "clientMcpTools": [{"name": "t", "inputSchema": {"type": "object", "x-any": 1}}]},
                        headers=bearer())

    assert response.status_code == 202, response.text


def test_every_v1_route_with_a_json_body_refuses_an_unknown_field(apps):
    """Routes added later included: the strictness is the route class's, not a list of fields."""
    checked = []
    for app in apps:
        with TestClient(app) as client:
            for route in app.routes:
                if not (isinstance(route, APIRoute) and is_canonical(route.path) and route.body_field is not None):
                    continue
                path = route.path_format.replace("{run_id}", "run_x").replace("{conversation_id}", "conv_x")
                for method in route.methods:
                    message = refused(client.request(method, path, json={"notAField": 1}, headers=bearer()))
                    assert "notAField: unknown field" in message, (method, path, message)
                    checked.append((method, path))
    assert ("POST", "/v1/runs") in checked and ("POST", "/v1/runs/stream") in checked
    assert ("POST", "/v1/runs/{run_id}/tool-outputs".replace("{run_id}", "run_x")) in checked


def test_the_two_step_surface_keeps_ignoring_fields_it_does_not_know(api):
    response = api.post("/ai/agent/stream", json={"task": "Hi", "agentRole": "chat", "clientVersion": "1.2",
                                                   "settings": {"temperature": 0.2}}, headers=bearer())

    assert response.status_code == 202, response.text
