"""The route table of the client surfaces that answer one request with one stream.

Each surface is a module in `runwire/formats/` (its request model, the adapter to a `RunRequest`,
its encoder) plus one row here. Adding a fifth surface touches that folder and this table.

A surface whose requests may also answer a run that waits for its client (seed 001: a tool
approval or a client tool's output, sent as the conversation's next request) names how in its
`follow_ups`: such a request continues the waiting run instead of starting one.
"""

# No `from __future__ import annotations` here, on purpose: FastAPI reads each endpoint's body
# type from its annotation at runtime, and `surface_endpoint` makes endpoints from this table's
# types, which a string annotation could not name.

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol, Union

from fastapi import FastAPI, Response
from pydantic import Discriminator, Tag

from ..core.actions import RunAnswers
from ..core.agents import AgentCatalog
from ..core.models import ApprovalDecision, Caller, RunRecord, RunRequest, ToolOutput
from ..core.run_service import new_conversation_id
from ..errors import NotWaitingError, RunNotFoundError, RunwireError, UnknownAgentError
from ..formats import chat_events, content_final, ui_message_stream
from ..formats.base import StreamFormat
from .auth import CallerDep
from .errors import error_response, status_for

OnDisconnect = Literal["cancel", "continue"]


class SurfaceStreams(Protocol):
    """What the surface routes need of the stream app (`RunStreamer`)."""

    async def one_shot(
        self, caller: Caller, request: RunRequest, fmt: StreamFormat, on_disconnect: OnDisconnect
    ) -> Response: ...

    async def active_run(self, caller: Caller, conversation_id: str) -> RunRecord | None: ...

    async def run(self, caller: Caller, run_id: str) -> RunRecord: ...

    async def answer(
        self, caller: Caller, run: RunRecord, *, outputs: list[ToolOutput], decisions: list[ApprovalDecision],
        fmt: StreamFormat, on_disconnect: OnDisconnect,
    ) -> Response: ...


@dataclass(frozen=True)
class FollowUps:
    """How a surface's request may answer its conversation's waiting run."""

    conversation: Callable[[Any], str | None]
    """The conversation whose waiting run a request may answer; None: it names none."""
    run_id: Callable[[Any], str | None]
    """Else the run the request says it answers (e.g. from the answered message's metadata)."""
    answers: Callable[[Any, RunRecord | None], RunAnswers | None]
    """What the request answers of that conversation's latest run; None: it starts a run instead."""
    format: StreamFormat
    """How the rest of the answered run is streamed."""


@dataclass(frozen=True)
class Surface:
    name: str
    body: type
    to_run_request: Callable[[Any, AgentCatalog], RunRequest]
    format: StreamFormat
    claims: Callable[[dict[str, Any]], bool] = lambda raw: True
    """On a path shared by several surfaces: whether a raw body is this surface's."""
    statuses: dict[type[RunwireError], int] = field(default_factory=dict)
    """Where this surface's documented status differs from the API's default."""
    follow_ups: FollowUps | None = None

    def status_for(self, error: RunwireError) -> int:
        for error_type, status in self.statuses.items():
            if isinstance(error, error_type):
                return status
        return status_for(error)


@dataclass(frozen=True)
class SurfaceRoute:
    path: str
    surfaces: tuple[Surface, ...]
    summary: str
    tags: tuple[str, ...]

    def body_type(self) -> Any:
        if len(self.surfaces) == 1:
            return self.surfaces[0].body

        def pick(raw: Any) -> str:
            if not isinstance(raw, dict):
                return self.surfaces[-1].name
            return next(s.name for s in self.surfaces if s.claims(raw))

        members = tuple(Annotated[s.body, Tag(s.name)] for s in self.surfaces)
        return Annotated[Union[members], Discriminator(pick)]  # noqa: UP007 - Union of a runtime tuple

    @property
    def name(self) -> str:
        """The endpoint's name (OpenAPI's operationId): `stream_ai_sdk_chat`, …"""
        return "stream_" + "_or_".join(surface.name.replace("-", "_") for surface in self.surfaces)

    def error_responses(self) -> dict[int | str, dict[str, Any]]:
        """The statuses this route's surfaces answer besides the API's usual ones, described, for OpenAPI."""
        described: dict[int, list[str]] = {}
        for surface in self.surfaces:
            for error_type, status in surface.statuses.items():
                described.setdefault(status, []).append(SURFACE_ERRORS[error_type])
        if any(surface.follow_ups for surface in self.surfaces):
            for error_type in (NotWaitingError, RunNotFoundError):
                described.setdefault(status_for(error_type("")), []).append(SURFACE_ERRORS[error_type])
        return {status: {"description": "; or ".join(texts)} for status, texts in sorted(described.items())}

    def surface_for(self, body: Any) -> Surface:
        return next(s for s in self.surfaces if isinstance(body, s.body))


SURFACE_ERRORS: dict[type[RunwireError], str] = {
    UnknownAgentError: "`unknown_agent`: no agent has the body's `agent_id`",
    NotWaitingError: "`not_waiting`: the request answers a tool call its run is not waiting for, "
                     "or answers it differently than before",
    RunNotFoundError: "`run_not_found`: the run the answered message names does not exist in this org, or has expired",
}
"""What the errors a surface answers with its own status mean there (`Surface.statuses`, follow-ups)."""


AI_SDK_CHAT = Surface(
    name="ai-sdk-chat",
    body=ui_message_stream.UIChatStreamRequest,
    to_run_request=lambda body, catalog: ui_message_stream.to_run_request(
        body, new_conversation_id=new_conversation_id
    ),
    format=ui_message_stream.UI_MESSAGE_STREAM,
    follow_ups=FollowUps(
        conversation=ui_message_stream.waiting_conversation,
        run_id=ui_message_stream.answered_run_id,
        answers=ui_message_stream.follow_up_answers,
        format=ui_message_stream.UI_MESSAGE_CONTINUATION,
    ),
)

AGENT_CHAT = Surface(
    name="agent-chat",
    body=chat_events.AgentChatRequest,
    to_run_request=chat_events.to_run_request,
    format=chat_events.CHAT_EVENTS,
    claims=lambda raw: "agent_id" in raw,
    statuses={UnknownAgentError: 404},  # seed 002: "404 Agent not found"
)

CONTENT_CHAT = Surface(
    name="content-chat",
    body=content_final.ContentChatRequest,
    to_run_request=lambda body, catalog: content_final.to_run_request(
        body, new_conversation_id=new_conversation_id
    ),
    format=content_final.CONTENT_FINAL,
)

STREAM_ROUTES: tuple[SurfaceRoute, ...] = (
    SurfaceRoute(
        "/api/agent/chat/stream",
        (AI_SDK_CHAT,),
        "An AI SDK UI message stream (useChat's DefaultChatTransport)",
        ("AI SDK UI message stream",),
    ),
    SurfaceRoute(
        "/chat/stream",
        (AGENT_CHAT, CONTENT_CHAT),
        "Chat events ({type, content}) for a body with agent_id; without: {content, is_final, metrics} events",
        ("chat events", "content/is_final"),
    ),
)


def surface_endpoint(route: SurfaceRoute, streams: SurfaceStreams, catalog: AgentCatalog) -> Callable[..., Any]:
    body_type = route.body_type()

    async def endpoint(body: body_type, caller: CallerDep) -> Response:  # type: ignore[valid-type]
        surface = route.surface_for(body)
        on_disconnect = on_disconnect_of(body)
        try:
            answered = await answer_follow_up(surface, body, caller, streams, on_disconnect)
            if answered is not None:
                return answered
            request = surface.to_run_request(body, catalog)
            return await streams.one_shot(caller, request, surface.format, on_disconnect)
        except RunwireError as error:
            return error_response(error, surface.status_for(error))

    endpoint.__doc__ = route.summary + ". The run is cancelled when the client disconnects."
    if any(surface.follow_ups for surface in route.surfaces):
        endpoint.__doc__ += (
            " A request that answers the conversation's waiting run (a tool approval, a client tool's"
            " output) continues that run, streamed as the same assistant message, instead of starting one."
        )
    return endpoint


def on_disconnect_of(body: Any) -> OnDisconnect:
    """The body's `onDisconnect`, for surfaces that have one; otherwise the run stops with its client."""
    return "continue" if getattr(body, "on_disconnect", "cancel") == "continue" else "cancel"


async def answer_follow_up(
    surface: Surface, body: Any, caller: Caller, streams: SurfaceStreams, on_disconnect: OnDisconnect
) -> Response | None:
    """The rest of the waiting run this request answers, streamed; None when it starts a run."""
    follow_ups = surface.follow_ups
    if follow_ups is None:
        return None
    conversation_id, run_id = follow_ups.conversation(body), follow_ups.run_id(body)
    run = None
    if run_id is not None:
        # The answered message's metadata names the run it came from: the run these answers are
        # for, even when the conversation has moved on to a newer run since (a waiting run does
        # not hold its conversation), or the chat's `id` is not the conversation it ran in.
        try:
            run = await streams.run(caller, run_id)
        except RunNotFoundError:
            run = None  # expired, or not this org's: the conversation's latest run, then
    if run is None and conversation_id is not None:
        run = await streams.active_run(caller, conversation_id)
    answers = follow_ups.answers(body, run)
    if answers is None or run is None:
        return None
    return await streams.answer(
        caller, run, outputs=answers.outputs, decisions=answers.decisions,
        fmt=follow_ups.format, on_disconnect=on_disconnect,
    )


def add_surface_routes(app: FastAPI, streams: SurfaceStreams, catalog: AgentCatalog) -> None:
    for route in STREAM_ROUTES:
        app.add_api_route(
            route.path,
            surface_endpoint(route, streams, catalog),
            methods=["POST"],
            summary=route.summary,
            name=route.name,
            tags=list(route.tags),
            response_class=Response,
            responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
                       **route.error_responses()},
        )
