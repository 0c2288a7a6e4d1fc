"""The one OpenAPI document and /docs, in process over the in-memory fakes: what a client generator
and a person read (issue 12, point 1)."""

from __future__ import annotations

import json
import re

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from runwire.http.auth import CallerDep
from runwire.http.openapi import STREAMS, api_document, operation_id

from .in_memory_apps import in_memory_apps

METHODS = {"get", "post", "put", "patch", "delete", "head"}


@pytest.fixture(scope="module")
def apps():
    return in_memory_apps()


@pytest.fixture(scope="module")
def api(apps):
    with TestClient(apps[0]) as client:
        yield client


@pytest.fixture(scope="module")
def document(api) -> dict:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def schema_of(document: dict, ref: str) -> dict:
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_document_lists_every_route_of_both_apps(apps, document):
    for app in apps:
        for route in app.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods:
                    assert method.lower() in document["paths"].get(route.path_format, {}), (method, route.path_format)


def test_no_operation_declares_a_422_the_api_never_answers(document):
    text = json.dumps(document)
    assert '"422"' not in text
    assert "HTTPValidationError" not in text


def test_every_error_response_is_the_error_schema(document):
    for path, method, operation in operations(document):
        errors = {status: r for status, r in operation["responses"].items() if status[0] in "45"}
        assert "400" in errors or not operation.get("parameters"), (method, path)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
            assert response["description"], (method, path, status)
    error = document["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    assert set(schema_of(document, error["properties"]["error"]["$ref"])["required"]) == {"code", "message"}


def test_a_route_that_names_a_resource_in_its_path_declares_404(document):
    for path, method, operation in operations(document):
        if "{" in path:
            assert "404" in operation["responses"], (method, path)


def test_the_chat_surfaces_declare_their_own_statuses(document):
    assert "404" in document["paths"]["/chat/stream"]["post"]["responses"]  # an unknown agent_id
    assert "409" in document["paths"]["/api/agent/chat/stream"]["post"]["responses"]  # an answer nothing waits for


BEARER_ONLY_GETS = {"/v1/webhooks/secret"}
"""GETs the cookie does not authorize: the webhook signing secret (docs/api.md, "Webhooks")."""


def test_security_schemes_bearer_everywhere_and_the_cookie_on_gets_only(document):
    schemes = document["components"]["securitySchemes"]
    assert {k: schemes["bearerAuth"][k] for k in ("type", "scheme", "bearerFormat")} == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["accessTokenCookie"]["in"] == "cookie" and schemes["accessTokenCookie"]["name"] == "access_token"
    secured = 0
    for path, method, operation in operations(document):
        cookie = method in ("get", "head") and path not in BEARER_ONLY_GETS
        expected = [{"bearerAuth": []}] + ([{"accessTokenCookie": []}] if cookie else [])
        assert operation.get("security") == expected, (method, path)  # every route in the document needs a token
        where = {(p["name"], p["in"]) for p in operation["parameters"]}
        assert {("orgid", "header"), ("orgid", "query")} <= where, (method, path)
        assert {"400", "401", "403"} <= set(operation["responses"]), (method, path)
        secured += 1
    assert secured >= 15


def test_a_route_of_an_included_router_is_described_as_the_apps_own():
    """How a feature adds its routes (an `APIRouter`, included): described the same way."""
    app = FastAPI(generate_unique_id_function=operation_id)
    router = APIRouter(prefix="/v1/things", tags=["runs"])

    @router.delete("/{thing_id}", status_code=204)
    def delete_thing(thing_id: str, who: CallerDep) -> None:
        return None

    app.include_router(router)
    operation = api_document("t", "1", app.routes)["paths"]["/v1/things/{thing_id}"]["delete"]

    assert operation["operationId"] == "delete_thing"
    assert operation["security"] == [{"bearerAuth": []}]
    assert {"400", "401", "403", "404", "503"} <= set(operation["responses"]) and "422" not in operation["responses"]


def test_stream_routes_are_event_streams_with_their_event_shapes(apps, document):
    stream_app = apps[1]
    for route in stream_app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods:
                assert (method, route.path_format) in STREAMS, (method, route.path_format)
    for (method, path), described in STREAMS.items():
        operation = document["paths"][path][method.lower()]
        ok = operation["responses"]["200"]
        assert list(ok["content"]) == ["text/event-stream"], (method, path)
        names = {p["name"] for p in operation.get("parameters", [])}
        assert ("Last-Event-ID" in names) is described.resumable, (method, path)
    native = document["paths"]["/v1/runs/{run_id}/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    events = [schema_of(document, option["$ref"]) for option in native["schema"]["anyOf"]]
    kinds = {(e["properties"]["event"]["const"], "id" in e["properties"]) for e in events}
    assert kinds == {("data", True), ("data", False), ("end", True)}
    end = next(e for e in events if e["properties"]["event"]["const"] == "end")
    status = schema_of(document, end["properties"]["data"]["$ref"])["properties"]["status"]
    assert set(status["enum"]) == {"succeeded", "failed", "cancelled", "expired"}
    ui = document["paths"]["/api/agent/chat/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    ui_event = schema_of(document, ui["schema"]["$ref"]) if "$ref" in ui["schema"] else ui["schema"]
    assert "tool-approval-request" in json.dumps(document["components"]["schemas"]["ToolApprovalRequestChunk"])
    assert ui_event["properties"]["data"]


def test_v1_request_bodies_are_closed_at_every_depth_and_the_surfaces_are_not(document):
    run_request = document["components"]["schemas"]["RunRequest"]
    assert run_request["additionalProperties"] is False
    for nested in ("RunSettings", "HistoryMessage", "ClientTool", "FileReference", "ImageInput"):
        assert document["components"]["schemas"][nested]["additionalProperties"] is False, nested
    for open_body in ("TwoStepRunRequest", "UIChatStreamRequest", "AgentChatRequest", "ContentChatRequest"):
        assert "additionalProperties" not in document["components"]["schemas"][open_body], open_body
    body = document["paths"]["/v1/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RunRequest"}


def test_tags_name_surfaces_for_what_they_are(document):
    tags = {tag for _, _, operation in operations(document) for tag in operation.get("tags", [])}
    assert not [tag for tag in tags if re.search(r"seed", tag, re.IGNORECASE)], tags
    assert {"runs", "streams", "two-step stream", "AI SDK UI message stream", "chat events", "content/is_final"} <= tags
    assert tags <= {tag["name"] for tag in document["tags"]}


def test_docs_page_loads_swagger_ui_from_the_package_not_a_cdn(api):
    page = api.get("/docs")

    assert page.status_code == 200
    assert not re.search(r"(src|href)=['\"]https?://", page.text), page.text
    assets = re.findall(r"(?:src|href)=['\"](/docs/assets/[^'\"]+)['\"]", page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
    for asset in assets:
        response = api.get(asset)
        assert response.status_code == 200 and len(response.content) > 0, asset
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text


def test_the_stream_app_serves_no_document_of_its_own(apps):
    with TestClient(apps[1]) as stream:
        assert stream.get("/openapi.json").status_code == 404
        assert stream.get("/docs").status_code == 404


def test_operation_ids_are_the_endpoints_names_and_unique(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]

    assert len(ids) == len(set(ids)), ids
    assert {"start_run", "get_run", "stream_run", "stream_ai_sdk_chat", "stream_agent_chat_or_content_chat"} <= set(ids)


def test_the_document_names_no_seed_numbers(document):
    """Surfaces are named for what they are; "seed 00N" means nothing to a reader of /docs."""
    assert not re.findall(r".{40}\bseed \d{3}.{20}", json.dumps(document), re.IGNORECASE)


def test_the_routes_that_start_a_run_declare_the_busy_conversation(document):
    for path in ("/v1/runs", "/ai/agent/stream", "/v1/runs/wait", "/v1/runs/stream"):
        busy = document["paths"][path]["post"]["responses"]["409"]
        assert "conversation_busy" in busy["description"], path
        assert busy["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
