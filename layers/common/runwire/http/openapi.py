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
  `http/unknown_fields.py` enforces; a nested component a client surface's body shares (which
  ignores unknown fields) is closed as a copy named `…Closed`, so each route's schema says what
  the route does.

`/docs` is Swagger UI from files shipped in the package (`static/swagger-ui`, swagger-ui-dist
5.35.0, Apache-2.0): the page works on a machine without a CDN.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
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
`EventSource` cannot send headers) the `access_token` cookie also works, except on
`GET /v1/webhooks/secret`, which takes the bearer token only. The org is the `orgid`
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
    "404": "No such run in this org, or it has expired (`run_not_found`)",
    "409": "The run is not in a state that allows this (`run_conflict`)",
    "413": "The request is too large (`request_too_large`)",
    "502": "The run failed (the run's error code)",
    "503": "Storage or the run queue is unavailable (`storage_error`, `queue_unavailable`): the request "
           "did not complete. A cancel or an answer (tool outputs, approvals) can be sent again; after a "
           "start, look for the run (`GET /v1/runs`) before starting it again",
}


RUN_PATH_PARAMETERS = ("{run_id}", "{stream_id}")
"""A path that names a run answers 404 when the org has no such run (or it has expired). Other routes
with a path parameter declare their own 404 if they can answer one: reading a conversation that has
nothing, or resuming a chat with nothing active, is not an error (200 empty, 204)."""

CONVERSATION_BUSY = ("`conversation_busy` (with `activeRunId`): the run names a conversation whose run is still queued or "
                     "running, and `multitaskStrategy` is `reject` (the default)")
LOST_START_RACE = ("other requests started runs on the same conversation at the same moment and this one lost the "
                   "race to start, a few times over: send it again")
RUN_STARTS = {
    ("POST", "/v1/runs"): CONVERSATION_BUSY,
    ("POST", "/v1/runs/wait"): CONVERSATION_BUSY,
    ("POST", "/v1/runs/stream"): CONVERSATION_BUSY,
}
"""The `/v1/` routes that start a run from a run request, whose `multitaskStrategy` (`reject` by default)
refuses a run on a busy conversation: their 409."""
SURFACE_BUSY = ("`conversation_busy`, only when " + LOST_START_RACE + ". A message sent while the conversation's run "
                "is queued or running is queued behind it, not refused")
SURFACE_STARTS = {
    ("POST", "/ai/agent/stream"): ("`conversation_busy` (with `activeRunId`): the request sends `multitaskStrategy: "
                                   "\"reject\"` and its conversation's run is still queued or running (without it, the "
                                   "run is queued behind that one); or " + LOST_START_RACE),
    ("POST", "/chat/run"): SURFACE_BUSY,
    ("POST", "/chat/stream"): SURFACE_BUSY,
    ("POST", "/api/agent/chat/stream"): SURFACE_BUSY,
}
"""The client surfaces' routes that start runs. They queue a message behind the conversation's active run
(formats.base.SURFACE_MULTITASK_STRATEGY), so their 409 `conversation_busy` is a lost start race."""


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
    no_content: str | None = None
    """When the route answers 204 instead of a stream (a resumable one: `FINISHED`)."""


FINISHED = "The run has finished and nothing is left after the resume point"
NOTHING_ACTIVE = "Nothing to resume: the conversation's latest run has finished, or it has none"


STREAMS: dict[tuple[str, str], StreamDescription] = {
    ("GET", "/v1/runs/{run_id}/stream"): StreamDescription(
        RunwireStreamEvent, "The run's events, ending with `event: end`." + FORMATS_NOTE, resumable=True,
        no_content=FINISHED),
    ("POST", "/v1/runs/stream"): StreamDescription(
        RunwireStreamEvent, "The new run's events, ending with `event: end`." + FORMATS_NOTE),
    ("GET", "/ai/stream/{stream_id}"): StreamDescription(
        RunwireStreamEvent, "The run's events, ending with `event: end`." + FORMATS_NOTE, resumable=True,
        no_content=FINISHED),
    ("POST", "/api/agent/chat/stream"): StreamDescription(
        UIMessageStreamEvent, "An AI SDK UI message stream (header `x-vercel-ai-ui-message-stream: v1`)."),
    ("GET", "/api/agent/chat/{conversation_id}/stream"): StreamDescription(
        UIMessageStreamEvent, "The conversation's active assistant message, from its `start`; 204 when none is active.",
        no_content=NOTHING_ACTIVE),
    ("GET", "/api/agent/chat/stream/{chat_id}/stream"): StreamDescription(
        UIMessageStreamEvent, "The chat's active assistant message, from its `start`; 204 when none is active.",
        no_content=NOTHING_ACTIVE),
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
    if any(parameter in path for parameter in RUN_PATH_PARAMETERS):
        responses.setdefault("404", {})
    busy = RUN_STARTS.get((method, path)) or SURFACE_STARTS.get((method, path))
    if busy is not None:
        declared = responses.setdefault("409", {}).get("description")
        responses["409"]["description"] = f"{declared}; or {busy}" if is_described(declared, "409") else busy
    stream = STREAMS.get((method, path))
    if stream is not None:
        describe_stream(operation, stream, schemas)
    for status, response in responses.items():
        if status[0] in "45":
            if not is_described(response.get("description"), status):
                response["description"] = ERROR_DESCRIPTIONS.get(status, "Error")
            response["content"] = {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}}


def is_described(description: str | None, status: str) -> bool:
    """Whether a route gave this response a description of its own: FastAPI fills in "Additional
    Response", or the status's reason phrase ("Not Found") for `responses={404: {}}`."""
    return bool(description) and description not in ("Additional Response", HTTPStatus(int(status)).phrase)


def describe_stream(operation: dict[str, Any], stream: StreamDescription, schemas: dict[str, Any]) -> None:
    event_schema = add_schemas(schemas, stream.event)
    operation["responses"]["200"] = {
        "description": stream.description,
        "content": {"text/event-stream": {"schema": event_schema}},
    }
    if stream.no_content is not None:
        operation["responses"]["204"] = {"description": stream.no_content}
    if stream.resumable:
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
    """`additionalProperties: false` on every object a `/v1/` route's body holds, at every depth.

    A component that something else uses too (a client surface's body, which ignores unknown
    fields, or a response) is not closed in place: the `/v1/` bodies get a closed copy,
    `{name}Closed`, so each route's schema says what that route does."""
    schemas = document["components"]["schemas"]
    bodies = [body for body in json_bodies(document) if is_canonical(body.path)]
    others: list[Any] = [body.media["schema"] for body in json_bodies(document) if not is_canonical(body.path)]
    for item in document["paths"].values():
        for operation in item.values():
            others.append({key: value for key, value in operation.items() if key != "requestBody"})
    shared = referenced(others, schemas)
    closed_names: dict[str, str] = {}
    for body in bodies:
        body.media["schema"] = close(copy.deepcopy(body.media["schema"]), schemas, shared, closed_names)


@dataclass(frozen=True)
class JsonBody:
    path: str
    media: dict[str, Any]


def json_bodies(document: dict[str, Any]) -> Iterator[JsonBody]:
    for path, item in document["paths"].items():
        for operation in item.values():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media and "schema" in media:
                yield JsonBody(path, media)


def referenced(schema: Any, schemas: dict[str, Any], found: set[str] | None = None) -> set[str]:
    """The components `schema` refers to, directly or through other components."""
    found = set() if found is None else found
    if isinstance(schema, list):
        for item in schema:
            referenced(item, schemas, found)
    elif isinstance(schema, dict):
        name = component_name(schema.get("$ref"))
        if name is not None and name not in found:
            found.add(name)
            referenced(schemas[name], schemas, found)
        for value in schema.values():
            referenced(value, schemas, found)
    return found


def component_name(ref: Any) -> str | None:
    prefix = "#/components/schemas/"
    return ref[len(prefix):] if isinstance(ref, str) and ref.startswith(prefix) else None


def close(schema: Any, schemas: dict[str, Any], shared: set[str], closed_names: dict[str, str]) -> Any:
    if isinstance(schema, list):
        return [close(item, schemas, shared, closed_names) for item in schema]
    if not isinstance(schema, dict):
        return schema
    name = component_name(schema.get("$ref"))
    if name is not None:
        if name not in closed_names:
            closed_name = name if name not in shared or is_closed(name, schemas) else f"{name}Closed"
            if closed_name != name and closed_name in schemas:
                raise ValueError(f"{closed_name!r} is already a schema: cannot close {name!r} under that name")
            closed_names[name] = closed_name  # before closing it: a component may refer to itself
            closed = close(copy.deepcopy(schemas[name]), schemas, shared, closed_names)
            if closed_name != name and "title" in closed:
                closed["title"] = closed_name  # client generators name a model by its title
            schemas[closed_name] = closed
        return {**schema, "$ref": REF.format(model=closed_names[name])}
    closed = {key: close(value, schemas, shared, closed_names) for key, value in schema.items()}
    if closed.get("type") == "object" and "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


def is_closed(name: str, schemas: dict[str, Any]) -> bool:
    """Whether a component is already closed at every depth (its model forbids extras itself)."""
    return all(not open_objects(schemas[n]) for n in referenced({"$ref": REF.format(model=name)}, schemas))


def open_objects(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(open_objects(item) for item in schema)
    if not isinstance(schema, dict):
        return False
    if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
        return True
    return any(open_objects(value) for value in schema.values())


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
