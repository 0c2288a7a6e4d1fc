"""The one OpenAPI document and /docs, in process over the in-memory fakes: what a client generator
and a person read (issue 12, point 1)."""

from __future__ import annotations

import json
import re
from http import HTTPStatus

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from runwire.http.auth import CallerDep
from runwire.http.openapi import STREAMS, api_document, operation_id

from .in_memory_apps import bearer, in_memory_apps

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


NOT_FOUND = {
    ("get", "/v1/runs/{run_id}"), ("get", "/v1/runs/{run_id}/events"), ("post", "/v1/runs/{run_id}/cancel"),
    ("post", "/v1/runs/{run_id}/tool-outputs"), ("post", "/v1/runs/{run_id}/approvals"),
    ("get", "/v1/runs/{run_id}/stream"), ("get", "/ai/stream/{stream_id}"),
    ("delete", "/v1/conversations/{conversation_id}"), ("delete", "/v1/webhooks/{webhook_id}"),
    ("post", "/chat/stream"),  # an unknown agent_id
    ("post", "/api/agent/chat/stream"),  # an answer to a run that is not there
}
"""The operations whose code can answer 404, read route by route. Reading a conversation's messages
answers 200 with none, and the AI SDK's resume GETs 204, whatever the id."""
RESUME_GETS = ("/api/agent/chat/{conversation_id}/stream", "/api/agent/chat/stream/{chat_id}/stream")


def test_404_is_declared_exactly_where_a_route_can_answer_it(document):
    declared = {(method, path) for path, method, operation in operations(document) if "404" in operation["responses"]}

    assert declared == NOT_FOUND


def test_the_ai_sdk_resume_gets_declare_their_204(document):
    for path in RESUME_GETS:
        responses = document["paths"][path]["get"]["responses"]
        assert "204" in responses and "finished" in responses["204"]["description"], path
        assert "404" not in responses, path


def test_a_get_that_names_something_unknown_answers_a_status_its_operation_declares(apps, document):
    """What the document says, against what the routes answer (schemathesis skips the event streams)."""
    api, stream = apps
    stream_paths = {route.path_format for route in stream.routes if isinstance(route, APIRoute)}
    answered = {}
    for path, method, operation in operations(document):
        if method != "get" or "{" not in path:
            continue
        with TestClient(stream if path in stream_paths else api) as client:
            response = client.get(re.sub(r"\{[^}]+\}", "nothing-here-1", path), headers=bearer())
        assert str(response.status_code) in operation["responses"], (path, response.status_code, response.text)
        answered[path] = response.status_code
    assert answered["/v1/conversations/{conversation_id}/messages"] == 200
    assert answered["/v1/runs/{run_id}"] == 404
    assert {answered[path] for path in RESUME_GETS} == {204}


def test_the_chat_surfaces_declare_their_own_statuses(document):
    chat = document["paths"]["/chat/stream"]["post"]["responses"]
    ai_sdk = document["paths"]["/api/agent/chat/stream"]["post"]["responses"]
    assert "unknown_agent" in chat["404"]["description"]
    assert "not_waiting" in ai_sdk["409"]["description"]  # an answer nothing waits for
    assert "run_not_found" in ai_sdk["404"]["description"]


def test_no_error_response_is_described_by_its_reason_phrase_alone(document):
    """FastAPI describes `responses={409: {}}` as "Conflict": say what the route means by it."""
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["description"] != HTTPStatus(int(status)).phrase, (method, path, status)


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
    router = APIRouter(prefix="/v1/runs", tags=["runs"])

    @router.delete("/{run_id}/notes", status_code=204)
    def delete_notes(run_id: str, who: CallerDep) -> None:
        return None

    app.include_router(router)
    operation = api_document("t", "1", app.routes)["paths"]["/v1/runs/{run_id}/notes"]["delete"]

    assert operation["operationId"] == "delete_notes"
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
    for nested in ("RunSettings", "HistoryMessageClosed", "ClientToolClosed", "FileReferenceClosed", "ImageInputClosed"):
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


def test_the_routes_that_start_a_run_declare_when_their_conversation_is_busy(document):
    """The /v1 starts refuse a busy conversation (`reject` by default); the surfaces queue behind it,
    so theirs is only a lost start race (core.run_service raises it after its last try)."""
    def busy(path: str) -> str:
        response = document["paths"][path]["post"]["responses"]["409"]
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        description: str = response["description"]
        assert "conversation_busy" in description, path
        return description

    for path in ("/v1/runs", "/v1/runs/wait", "/v1/runs/stream"):
        assert "`reject` (the default)" in busy(path), path
    for path in ("/ai/agent/stream", "/chat/run", "/chat/stream", "/api/agent/chat/stream"):
        assert "lost the race" in busy(path) and "(the default)" not in busy(path), path
    assert "not_waiting" in busy("/api/agent/chat/stream")


def test_the_description_names_the_gets_the_cookie_does_not_authorize(document):
    for path in BEARER_ONLY_GETS:
        assert f"GET {path}`, which takes the bearer token only" in document["info"]["description"]


def reachable(document: dict, schema: object) -> dict[str, dict]:
    """The components a schema refers to, at every depth, by name."""
    found: dict[str, dict] = {}
    pending = [schema]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] not in found:
                found[ref.rsplit("/", 1)[-1]] = schema_of(document, ref)
                pending.append(schema_of(document, ref))
            pending.extend(item.values())
    return found


def open_objects(schema: object) -> list[dict]:
    if isinstance(schema, list):
        return [o for item in schema for o in open_objects(item)]
    if not isinstance(schema, dict):
        return []
    here = [schema] if "properties" in schema and schema.get("additionalProperties") is not False else []
    return here + [o for value in schema.values() for o in open_objects(value)]


def test_a_component_a_surface_shares_with_v1_is_closed_only_for_v1(api, document):
    """`ClientTool`, `FileReference`, `HistoryMessage`… stay open where a surface ignores their extras;
    the /v1 bodies hold closed copies."""
    v1 = reachable(document, document["paths"]["/v1/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    two_step = reachable(document, document["paths"]["/ai/agent/stream"]["post"]["requestBody"]["content"]["application/json"]["schema"])

    assert not [name for name, schema in v1.items() if open_objects(schema)]
    assert {"ClientToolClosed", "FileReferenceClosed", "HistoryMessageClosed"} <= set(v1)
    titles = [schema.get("title", name) for name, schema in document["components"]["schemas"].items()]
    assert len(titles) == len(set(titles)), titles  # a client generator names its models by title
    for shared in ("ClientTool", "FileReference", "HistoryMessage", "ImageInput"):
        assert shared in two_step and shared not in v1, shared
        assert open_objects(two_step[shared]), shared
    assert two_step["RunSettings"]["additionalProperties"] is False  # settings refuses unknown keys everywhere
    response = api.post("/ai/agent/stream", json={
        "task": "Hi", "conversationHistory": [{"role": "user", "content": "a", "name": "x"}],
        "clientMcpTools": [{"name": "t", "inputSchema": {"type": "object"}, "x-extra": 1}]}, headers=bearer())
    assert response.status_code == 202, response.text  # what the open schemas say
