"""One OpenAPI document for every route under the base URL, and the `/docs` page that shows it.

FastAPI generates a document from each app's routes; this module makes it say what the API does
(issue 12, point 1), in one step applied to the generated document, so routes added later get it
too:

- both apps' routes in one document (the API app serves it; the stream app serves none), since
  deployed they sit under one base URL;
- the security schemes: a bearer JWT, or on GET/HEAD the `access_token` cookie, and the `orgid`
  header (or query parameter) on every authenticated route (`http/auth.py` declares them; the
  cookie is taken off the other methods here);
- every error response with its real status and one `ErrorResponse` schema; FastAPI's 422
  `HTTPValidationError`, which this API never answers (`http/errors.py` answers 400), removed;
- stream routes as `text/event-stream`, with the shape of their events, and `Last-Event-ID` on the
  GETs that resume. OpenAPI 3.1 has no schema for one event of a stream (3.2's `itemSchema` does),
  so the media type's `schema` is one event as 3.2 models it: an object of the event's fields
  (`event`, `id`, `data`), `data` already parsed from its JSON;
- request bodies of the `/v1/` routes closed (`additionalProperties: false`, nested ones too), as
  `http/unknown_fields.py` enforces.

`/docs` is Swagger UI from files shipped in the package (`static/swagger-ui`, swagger-ui-dist
5.35.0, Apache-2.0): the page works on a machine without a CDN.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.routing import BaseRoute

from ..core.models import Chunk, EndChunk, RunStatus
from ..formats.chat_events import ChatStreamEvent
from ..formats.content_final import ContentEvent
from ..formats.ui_message_stream import UIMessageChunk
from .auth import COOKIE_METHODS, COOKIE_SCHEME
from .errors import ErrorResponse
from .unknown_fields import is_canonical

SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
OPENAPI_PATH = "/openapi.json"
REF = "#/components/schemas/{model}"

TAGS: list[dict[str, Any]] = [
    {"name": "runs", "description": "Start, inspect, poll, cancel and answer runs: the canonical JSON API."},
    {"name": "streams", "description": "A run's events as Server-Sent Events, resumable with `Last-Event-ID`."},
    {"name": "conversations", "description": "What a conversation remembers; listing and deleting conversations."},
    {"name": "webhooks", "description": "Endpoints the service POSTs run events to, signed per Standard Webhooks."},
    {"name": "two-step stream", "description": "Start a run with one request, stream it with a second "
     "(`POST /ai/agent/stream`, then `GET /ai/stream/{streamId}`). Fields the request does not know are ignored "
     "(but `settings` refuses unknown keys, as everywhere)."},
    {"name": "AI SDK UI message stream", "description": "The Vercel AI SDK's UI message stream protocol "
     "(`useChat` with `DefaultChatTransport`). Fields the SDK sends that the route does not use are ignored."},
    {"name": "chat events", "description": "`{type, content}` events for a named agent (`agent_id`)."},
    {"name": "content/is_final", "description": "`{content, is_final, metrics}` events, or one JSON answer."},
]

DESCRIPTION = """Start agent runs and follow them, all under one base URL.

**Authentication**: a JWT as `Authorization: Bearer <token>`; on GET requests (a browser's
`EventSource` cannot send headers) the `access_token` cookie also works. The org is the `orgid`
header (or query parameter), which the token must grant; without it, the token's own org.

**Errors** are JSON, whatever the status: `{"error": {"code": "…", "message": "…"}}`.

**Unknown fields**: the `/v1/` routes refuse a body field they do not know (400, naming it, e.g.
`agentrole: unknown field`); the client surfaces (`/ai/…`, `/api/agent/…`, `/chat/…`) ignore them.

**Streams** are Server-Sent Events (`text/event-stream`): each stream route's 200 response shows
one event as an object of its fields (`event`, `id`, `data`).
"""

ERROR_DESCRIPTIONS: dict[str, str] = {
    "400": "Invalid request (`invalid_request`, naming the field; `org_required`; `unknown_agent`…)",
    "401": "Missing, invalid or expired token (`unauthenticated`)",
    "403": "The token does not grant the requested org (`org_forbidden`)",
    "404": "Not found in this org, or expired",
    "409": "The run is not in a state that allows this (`run_conflict`)",
    "413": "The request is too large (`request_too_large`)",
    "502": "The run failed (the run's error code)",
    "503": "Storage or the run queue is unavailable: nothing was done; try again",
}


RUN_STARTS = frozenset({("POST", "/v1/runs"), ("POST", "/ai/agent/stream"), ("POST", "/v1/runs/wait"),
                        ("POST", "/v1/runs/stream")})
"""The routes that start a run from a run request, whose `multitaskStrategy` may refuse it. (The client
surfaces queue a message behind the conversation's active run instead: formats.base.SURFACE_MULTITASK_STRATEGY.)"""
CONVERSATION_BUSY = ("`conversation_busy` (with `activeRunId`): the run names a conversation whose run is still queued or "
                     "running, and `multitaskStrategy` is `reject` (the default)")


# --- the events of each stream format, as OpenAPI 3.2 models one (its fields as an object) ------
class StreamEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")


if TYPE_CHECKING:
    DataChunk = Chunk
else:  # every chunk but the end, which is its own event: built from `Chunk`, so a new chunk type is here too
    DataChunk = Annotated[
        Union[tuple(t for t in get_args(get_args(Chunk)[0]) if t is not EndChunk)],  # noqa: UP007
        Field(discriminator="type"),
    ]


class RunwireDataEvent(StreamEvent):
    """`event: data`: one chunk of the run's log; `id` is its seq (what `Last-Event-ID` resumes after)."""

    event: Literal["data"]
    id: str = Field(description="The chunk's seq")
    data: DataChunk


class RecoveringStatus(BaseModel):
    type: Literal["status"]
    phase: Literal["recovering"]


class RunwireRecoveringEvent(StreamEvent):
    """`event: data` without an id: the run's worker is gone and another will take it over."""

    event: Literal["data"]
    data: RecoveringStatus


class EndEventData(BaseModel):
    status: Literal[RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.EXPIRED]


class RunwireEndEvent(StreamEvent):
    """`event: end`, last: how the run ended. The stream closes after it."""

    event: Literal["end"]
    id: str = Field(description="The end chunk's seq")
    data: EndEventData


RunwireStreamEvent = Annotated[
    RunwireDataEvent | RunwireRecoveringEvent | RunwireEndEvent, Field(description="One event of the `runwire` format")
]


class UIMessageStreamEvent(StreamEvent):
    """One `data:` line of the AI SDK UI message stream; the stream ends with `data: [DONE]`."""

    data: UIMessageChunk | Literal["[DONE]"]


class ChatStreamEventItem(StreamEvent):
    """One `data:` line: a `{type, …}` chat event; `done` or `error` is the last."""

    data: ChatStreamEvent


class ContentStreamEvent(StreamEvent):
    """One `data:` line: `{content, is_final}`; the final one carries `metrics` (and `error` if the run failed)."""

    data: ContentEvent


class ChatStreamSurfaceEvent(StreamEvent):
    """`POST /chat/stream`: chat events when the body names an `agent_id`, else `{content, is_final}` events."""

    data: ChatStreamEvent | ContentEvent


FORMATS_NOTE = (
    " `?format=` picks another encoding of the same run: `runwire` (the default, shown), "
    "`ui-message-stream`, `chat-events` or `content-final`."
)


@dataclass(frozen=True)
class StreamDescription:
    event: Any
    description: str
    resumable: bool = False
    """A GET that resumes after `Last-Event-ID` (or `?after=`), 204 when nothing is left to send."""


STREAMS: dict[tuple[str, str], StreamDescription] = {
    ("GET", "/v1/runs/{run_id}/stream"): StreamDescription(
        RunwireStreamEvent, "The run's events, ending with `event: end`." + FORMATS_NOTE, resumable=True),
    ("POST", "/v1/runs/stream"): StreamDescription(
        RunwireStreamEvent, "The new run's events, ending with `event: end`." + FORMATS_NOTE),
    ("GET", "/ai/stream/{stream_id}"): StreamDescription(
        RunwireStreamEvent, "The run's events, ending with `event: end`." + FORMATS_NOTE, resumable=True),
    ("POST", "/api/agent/chat/stream"): StreamDescription(
        UIMessageStreamEvent, "An AI SDK UI message stream (header `x-vercel-ai-ui-message-stream: v1`)."),
    ("GET", "/api/agent/chat/{conversation_id}/stream"): StreamDescription(
        UIMessageStreamEvent, "The conversation's active assistant message, from its `start`; 204 when none is active."),
    ("GET", "/api/agent/chat/stream/{chat_id}/stream"): StreamDescription(
        UIMessageStreamEvent, "The chat's active assistant message, from its `start`; 204 when none is active."),
    ("POST", "/chat/stream"): StreamDescription(ChatStreamSurfaceEvent, "Chat events, or content/is_final events."),
}


# --- the document ---------------------------------------------------------------------------------
def operation_id(route: APIRoute) -> str:
    """The endpoint's name (`start_run`), not FastAPI's `start_run_v1_runs_post`: what a generated
    client calls its function. The apps pass it as `generate_unique_id_function`."""
    return route.name


def api_document(title: str, version: str, routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document of `routes`, made to say what the routes do (see the module's doc).

    It works on the generated document alone (not on route objects), so routes from an included
    `APIRouter` get the same: FastAPI declares the security schemes and the `orgid` parameters of
    every route that depends on `current_caller` (`http/auth.py`)."""
    document = get_openapi(title=title, version=version, description=DESCRIPTION, routes=routes, tags=TAGS)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    add_schemas(schemas, ErrorResponse, "ErrorResponse")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            describe_operation(operation, path, method.upper(), schemas)
    close_canonical_bodies(document)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def describe_operation(operation: dict[str, Any], path: str, method: str, schemas: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    if "security" in operation:
        if method not in COOKIE_METHODS:  # the cookie authenticates GET and HEAD only
            operation["security"] = [r for r in operation["security"] if COOKIE_SCHEME.scheme_name not in r]
        for status in ("400", "401", "403", "503"):
            responses.setdefault(status, {})
    if "requestBody" in operation or operation.get("parameters"):
        responses.setdefault("400", {})
    if "requestBody" in operation:
        responses.setdefault("413", {})  # a run's request or answers too large to store
    if "{" in path:
        responses.setdefault("404", {})
    if (method, path) in RUN_STARTS:
        responses.setdefault("409", {"description": CONVERSATION_BUSY})
    stream = STREAMS.get((method, path))
    if stream is not None:
        describe_stream(operation, stream, schemas)
    for status, response in responses.items():
        if status[0] in "45":
            if not response.get("description") or response["description"] == "Additional Response":
                response["description"] = ERROR_DESCRIPTIONS.get(status, "Error")
            response["content"] = {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}}


def describe_stream(operation: dict[str, Any], stream: StreamDescription, schemas: dict[str, Any]) -> None:
    event_schema = add_schemas(schemas, stream.event)
    operation["responses"]["200"] = {
        "description": stream.description,
        "content": {"text/event-stream": {"schema": event_schema}},
    }
    if stream.resumable:
        operation["responses"]["204"] = {"description": "The run has finished and nothing is left after the resume point"}
        operation.setdefault("parameters", []).append({
            "name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "Resume after this event id (a seq), as EventSource sends on reconnecting; wins over `after`",
        })


def add_schemas(schemas: dict[str, Any], type_: Any, name: str | None = None) -> dict[str, Any]:
    """Put `type_`'s JSON schema and its definitions into `schemas`; return the schema (or a $ref)."""
    generated = TypeAdapter(type_).json_schema(ref_template=REF, mode="serialization")
    for definition, schema in generated.pop("$defs", {}).items():
        if definition in schemas and schemas[definition] != schema:
            raise ValueError(f"two different schemas named {definition!r} in the OpenAPI document")
        schemas[definition] = schema
    if name is None:
        return generated
    schemas[name] = generated
    return {"$ref": REF.format(model=name)}


def close_canonical_bodies(document: dict[str, Any]) -> None:
    """`additionalProperties: false` on every object a `/v1/` route's body holds, at every depth."""
    schemas = document["components"]["schemas"]
    seen: set[str] = set()
    for path, item in document["paths"].items():
        if not is_canonical(path):
            continue
        for operation in item.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if body:
                body["schema"] = close(copy.deepcopy(body["schema"]), schemas, seen)


def close(schema: Any, schemas: dict[str, Any], seen: set[str]) -> Any:
    if isinstance(schema, list):
        return [close(item, schemas, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            schemas[name] = close(schemas[name], schemas, seen)
        return schema
    closed = {key: close(value, schemas, seen) for key, value in schema.items()}
    if closed.get("type") == "object" and "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


# --- serving it -------------------------------------------------------------------------------------
def serve_api_docs(app: FastAPI, more_routes: Callable[[], Sequence[BaseRoute]] | None = None) -> None:
    """`/openapi.json` (this app's routes and `more_routes`', the stream app's) and `/docs`.

    The app must be created with `openapi_url=None, docs_url=None, redoc_url=None`: FastAPI's own
    page loads Swagger UI from a CDN."""
    document: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not document:
            routes = [*app.routes, *(more_routes() if more_routes else ())]
            document.update(api_document(app.title, app.version, routes))
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS_PATH, StaticFiles(directory=SWAGGER_UI), name="swagger-ui")

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_json() -> JSONResponse:
        return JSONResponse(openapi())

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{app.title}: API reference",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )
