"""Unknown fields are errors on the /v1 routes and ignored on the client surfaces (issue 12, point 2),
in process over the in-memory fakes."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from fastapi import APIRouter, Body, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from runwire.http.errors import install_error_handlers
from runwire.http.unknown_fields import CanonicalRoute, is_canonical, refuse_unknown_fields_on_v1

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
    """Every /v1 body the OpenAPI document lists, routes added later included: the strictness is the
    route class's, not a list of fields."""
    api, stream = apps
    document = TestClient(api).get("/openapi.json").json()
    stream_paths = {route.path_format for route in stream.routes if isinstance(route, APIRoute)}
    checked = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not is_canonical(path) or "requestBody" not in operation:
                continue
            with TestClient(stream if path in stream_paths else api) as client:
                url = re.sub(r"\{[^}]+\}", "x1", path)
                message = refused(client.request(method, url, json={"notAField": 1}, headers=bearer()))
            assert "notAField: unknown field" in message, (method, path, message)
            checked.append((method.upper(), path))
    assert {("POST", "/v1/runs"), ("POST", "/v1/runs/stream"), ("POST", "/v1/runs/{run_id}/tool-outputs")} <= set(checked)


def test_the_two_step_surface_keeps_ignoring_fields_it_does_not_know(api):
    response = api.post("/ai/agent/stream", json={"task": "Hi", "agentRole": "chat", "clientVersion": "1.2",
                                                   "settings": {"temperature": 0.2}}, headers=bearer())

    assert response.status_code == 202, response.text


class Thing(BaseModel):
    name: str


def test_v1_routes_added_later_refuse_unknown_fields_and_others_do_not():
    """A route added to the app after the rule, and a feature's `APIRouter` built with the route
    class, keep the rule; a route outside /v1/ keeps ignoring unknown fields."""
    app = FastAPI()
    refuse_unknown_fields_on_v1(app)
    install_error_handlers(app)
    router = APIRouter(prefix="/v1/things", route_class=CanonicalRoute)

    @router.post("")
    def create(body: Thing) -> dict[str, str]:
        return {"name": body.name}

    @app.post("/v1/later")
    def create_later(body: Thing) -> dict[str, str]:
        return {"name": body.name}

    @app.post("/legacy/things")
    def create_legacy(body: Thing) -> dict[str, str]:
        return {"name": body.name}

    app.include_router(router)
    client = TestClient(app)

    assert refused(client.post("/v1/things", json={"name": "a", "colour": "red"})).startswith("colour: unknown field")
    assert client.post("/v1/things", json={"name": "a"}).json() == {"name": "a"}
    assert refused(client.post("/v1/later", json={"name": "a", "colour": "red"})).startswith("colour: unknown field")
    assert client.post("/legacy/things", json={"name": "a", "colour": "red"}).json() == {"name": "a"}


def test_a_python_field_name_is_an_unknown_field_on_v1_at_any_depth(api):
    """The document declares the /v1 bodies closed with their camelCase names; `agent_role` is not
    one of them, though the model would take it (`populate_by_name`)."""
    before = api.get("/v1/conversations/conv-snake/messages", headers=bearer()).json()

    alone = refused(api.post("/v1/runs", json={"task": "Hi", "agent_role": "chat", "conversationId": "conv-snake"},
                             headers=bearer()))
    nested = refused(api.post("/v1/runs", json={"task": "Hi", "settings": {"max_tokens": 10}}, headers=bearer()))
    both = refused(api.post("/v1/runs", json={"task": "Hi", "agentRole": "chat", "agent_role": "chat"}, headers=bearer()))

    assert alone.startswith("agent_role: unknown field"), alone
    assert nested.startswith("settings.max_tokens: unknown field"), nested
    assert both.startswith("agent_role: unknown field"), both
    assert api.get("/v1/conversations/conv-snake/messages", headers=bearer()).json() == before
    assert api.post("/v1/runs", json={"task": "Hi", "agentRole": "chat", "settings": {"maxTokens": 10}},
                    headers=bearer()).status_code == 202


def test_the_surfaces_still_take_what_they_took(api):
    response = api.post("/ai/agent/stream", json={"task": "Hi", "agent_role": "chat"}, headers=bearer())

    assert response.status_code == 202, response.text


def test_a_body_written_annotated_or_optional_refuses_unknown_fields_too():
    app = FastAPI()
    refuse_unknown_fields_on_v1(app)
    install_error_handlers(app)

    @app.post("/v1/annotated")
    def annotated(body: Annotated[Thing, Body()]) -> dict[str, str]:
        return {"name": body.name}

    @app.post("/v1/embedded")
    def embedded(thing: Annotated[Thing, Body(embed=True)]) -> dict[str, str]:
        return {"name": thing.name}

    @app.post("/v1/optional")
    def optional(body: Thing | None = None) -> dict[str, str | None]:
        return {"name": body.name if body else None}

    client = TestClient(app)

    assert refused(client.post("/v1/annotated", json={"name": "a", "colour": "red"})).startswith("colour: unknown field")
    assert client.post("/v1/annotated", json={"name": "a"}).json() == {"name": "a"}
    assert "thing.colour: unknown field" in refused(client.post("/v1/embedded", json={"thing": {"name": "a", "colour": "red"}}))
    assert refused(client.post("/v1/optional", json={"name": "a", "colour": "red"})).startswith("colour: unknown field")
    assert client.post("/v1/optional").json() == {"name": None}


def test_a_v1_body_type_that_cannot_be_made_strict_fails_when_the_route_is_built():
    app = FastAPI()
    refuse_unknown_fields_on_v1(app)

    with pytest.raises(TypeError, match="cannot refuse unknown fields"):
        @app.post("/v1/many")
        def many(body: list[Thing]) -> int:
            return len(body)
