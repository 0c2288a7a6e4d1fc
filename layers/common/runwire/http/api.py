"""The API app (StartRunFunction, behind API Gateway and Mangum): start, inspect, poll, cancel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from ..adapters.tokens import JWTVerifier
from ..core.actions import ActionService
from ..core.cursors import MAX_CURSOR_CHARS
from ..core.listing import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, ListingService
from ..core.models import IDENTIFIER_PATTERN, RunRecord, RunRequest, RunStatus
from ..core.run_service import RunService, new_conversation_id
from ..core.webhooks import WebhookService
from ..errors import RunFailedError, StorageError
from ..formats import content_final
from .auth import CallerDep
from .errors import install_error_handlers
from .openapi import operation_id, serve_api_docs
from .public_origin import public_origin
from .unknown_fields import refuse_unknown_fields_on_v1
from .views import (
    SYNC_WAIT_LIMIT_SECONDS,
    ConversationMessagesPage,
    ConversationMessageView,
    ConversationsPage,
    ConversationView,
    EventsPage,
    RunsPage,
    RunSummaryView,
    RunView,
    StartRunResponse,
    SubmitApprovals,
    SubmitToolOutputs,
    TwoStepRunRequest,
    WaitRunRequest,
)
from .webhook_routes import install_webhook_routes

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request: `{\"error\": {\"code\", \"message\"}}`"},
    401: {"description": "Missing, invalid or expired token"},
    403: {"description": "The token does not grant the requested org"},
}
"""Every route's own; `http/openapi.py` adds the rest (404 where the path names something, 503…)."""


# Listing parameters (module level: `from __future__ import annotations` leaves route annotations as
# names that FastAPI resolves in this module).
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="Items a page holds at most")]
CursorQuery = Annotated[str | None, Query(
    min_length=1, max_length=MAX_CURSOR_CHARS,
    description="`nextCursor` of the previous page (with the same filters); omit for the first page")]


@dataclass(frozen=True)
class ApiDependencies:
    runs: RunService
    verifier: JWTVerifier
    actions: ActionService
    listing: ListingService
    webhooks: WebhookService | None = None
    stream_routes: Callable[[], Sequence[BaseRoute]] | None = None
    """The stream app's routes, for the one OpenAPI document (built only when it is asked for)."""


ANSWER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {"description": "`not_waiting`: the run is not waiting for that id, or it was answered differently"},
    503: {"description": "The run queue is unavailable; nothing was recorded as answered. Send the same answer again"},
}


def create_api_app(deps: ApiDependencies) -> FastAPI:
    app = FastAPI(
        title="runwire API",
        version="0.1.0",
        description=(
            "Start agent runs and follow them. Stream a run's events from the stream URL "
            "(Server-Sent Events, resumable with `Last-Event-ID`), or poll `/v1/runs/{runId}/events`."
        ),
        openapi_url=None,  # served by serve_api_docs: one document for both apps, /docs without a CDN
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
    )
    refuse_unknown_fields_on_v1(app)
    install_error_handlers(app)
    serve_api_docs(app, deps.stream_routes)
    app.state.verifier = deps.verifier

    def started(request: Request, run: RunRecord, stream_path: str) -> JSONResponse:
        # One origin serves the JSON routes and the streams (deployed: CloudFront in front of both).
        base = public_origin(request)
        body = StartRunResponse(
            stream_id=run.run_id,
            run_id=run.run_id,
            status=run.status,
            stream_url=f"{base}{stream_path.format(run_id=run.run_id)}",
            poll_url=f"{base}/v1/runs/{run.run_id}",
            events_url=f"{base}/v1/runs/{run.run_id}/events",
        )
        return JSONResponse(body.model_dump(by_alias=True, mode="json"), status_code=202)

    @app.post("/v1/runs", status_code=202, response_model=StartRunResponse, responses=ERROR_RESPONSES, tags=["runs"])
    def start_run(body: RunRequest, request: Request, who: CallerDep) -> JSONResponse:
        """Queue a run and answer at once with its ids and URLs."""
        return started(request, deps.runs.start(who, body), "/v1/runs/{run_id}/stream")

    @app.post("/ai/agent/stream", status_code=202, response_model=StartRunResponse, responses=ERROR_RESPONSES, tags=["two-step stream"])
    def start_agent_stream(body: TwoStepRunRequest, request: Request, who: CallerDep) -> JSONResponse:
        """Step 1 of the two-step stream: as `POST /v1/runs`, but fields it does not know are ignored;
        open `GET /ai/stream/{streamId}` next."""
        return started(request, deps.runs.start(who, body), "/ai/stream/{run_id}")

    @app.post(
        "/v1/runs/wait",
        response_model=RunView,
        responses={**ERROR_RESPONSES, 202: {"model": StartRunResponse, "description": "Still running at waitSeconds"}},
        tags=["runs"],
    )
    def run_and_wait(body: WaitRunRequest, request: Request, who: CallerDep) -> JSONResponse:
        """The sync variant: start a run and answer with the finished run (200), or with the run
        waiting for its client (200, `requires_action` with `pendingActions`), or, if it is still
        going after `waitSeconds` (default and maximum 25), with its URLs (202). Once the run is
        started, storage trouble while waiting also answers 202: a 503 would invite a retry that
        starts a second run."""
        run = deps.runs.start(who, body.run_request())
        try:
            finished = deps.runs.wait_for_end(who, run.run_id, timeout=body.wait_seconds)
            if not finished.status.is_terminal and finished.status is not RunStatus.REQUIRES_ACTION:
                return started(request, finished, "/v1/runs/{run_id}/stream")
            view = RunView.of(deps.runs.snapshot(who, run.run_id))
        except StorageError:
            return started(request, run, "/v1/runs/{run_id}/stream")
        return JSONResponse(view.model_dump(by_alias=True, mode="json"), status_code=200)

    @app.post(
        "/chat/run",
        response_model=content_final.ChatRunResponse,
        responses={**ERROR_RESPONSES, 202: {"model": StartRunResponse, "description": "Still running after 25 s"},
                   502: {"description": "The run failed: the model provider's error"}},
        tags=["content/is_final"],
    )
    def chat_run(body: content_final.ContentChatRequest, request: Request, who: CallerDep) -> JSONResponse:
        """A synchronous chat turn: the full reply, remembered in the conversation (created when new)."""
        run = deps.runs.start(who, content_final.to_run_request(body, new_conversation_id=new_conversation_id))
        finished = deps.runs.wait_for_end(who, run.run_id, timeout=SYNC_WAIT_LIMIT_SECONDS)
        if not finished.status.is_terminal:
            return started(request, finished, "/v1/runs/{run_id}/stream")
        if finished.status is not RunStatus.SUCCEEDED:
            error = finished.error
            raise RunFailedError(
                error.message if error else f"the run was {finished.status.value}",
                code=error.code if error else finished.status.value,
            )
        answer = content_final.ChatRunResponse(
            response=deps.runs.snapshot(who, run.run_id).output_text,
            conversation_id=run.request.conversation_id or "",
        )
        return JSONResponse(answer.model_dump(), status_code=200)

    @app.get("/v1/runs/{run_id}", response_model=RunView, responses=ERROR_RESPONSES, tags=["runs"])
    def get_run(run_id: str, who: CallerDep) -> RunView:
        """Status, timestamps, the output text so far, usage and error."""
        return RunView.of(deps.runs.snapshot(who, run_id))

    @app.get("/v1/runs/{run_id}/events", response_model=EventsPage, responses=ERROR_RESPONSES, tags=["runs"])
    def get_events(
        run_id: str,
        who: CallerDep,
        after: Annotated[int, Query(ge=0, description="Return the events after this seq")] = 0,
        wait: Annotated[float, Query(ge=0, le=20, description="Long-poll: hold the request up to this many seconds until an event after `after` exists")] = 0,
    ) -> EventsPage:
        """The run's events after `after`, as JSON: for clients that cannot hold a stream open.
        With `wait`, the answer comes as soon as there is an event, or empty after `wait` seconds."""
        if wait > 0:
            snapshot = deps.runs.wait_for_events(who, run_id, after=after, timeout=wait)
        else:
            snapshot = deps.runs.snapshot(who, run_id, after=after)
        return EventsPage.of(snapshot.run, snapshot.chunks, after)

    @app.post("/v1/runs/{run_id}/cancel", response_model=RunView, responses={**ERROR_RESPONSES, 409: {"description": "The run has already finished"}}, tags=["runs"])
    def cancel_run(run_id: str, who: CallerDep) -> RunView:
        """Stop a run. A queued run ends at once; a running one within about a second."""
        deps.runs.cancel(who, run_id)
        return RunView.of(deps.runs.snapshot(who, run_id))

    @app.post("/v1/runs/{run_id}/tool-outputs", status_code=202, response_model=RunView, responses=ANSWER_RESPONSES,
              tags=["runs"])
    def submit_tool_outputs(run_id: str, body: SubmitToolOutputs, who: CallerDep) -> JSONResponse:
        """Answer a run waiting in `requires_action` with the outputs of its client tools. Once every
        pending action is answered the run is re-queued and continues on the same stream."""
        deps.actions.submit_tool_outputs(who, run_id, body.tool_outputs)
        return answered(who, run_id)

    @app.post("/v1/runs/{run_id}/approvals", status_code=202, response_model=RunView, responses=ANSWER_RESPONSES,
              tags=["runs"])
    def submit_approvals(run_id: str, body: SubmitApprovals, who: CallerDep) -> JSONResponse:
        """Approve or deny the tool calls a waiting run asked a person about. Approved calls run with
        the input shown in the request; denied ones give the model an error result with the reason."""
        deps.actions.submit_decisions(who, run_id, body.approvals)
        return answered(who, run_id)

    def answered(who: Any, run_id: str) -> JSONResponse:
        view = RunView.of(deps.runs.snapshot(who, run_id))
        return JSONResponse(view.model_dump(by_alias=True, mode="json"), status_code=202)

    @app.get(
        "/v1/conversations/{conversation_id}/messages",
        response_model=ConversationMessagesPage,
        responses=ERROR_RESPONSES,
        tags=["conversations"],
    )
    def conversation_messages(
        who: CallerDep,
        conversation_id: Annotated[str, Path(pattern=IDENTIFIER_PATTERN)],
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> ConversationMessagesPage:
        """A conversation's latest messages, oldest first: what the next run in it will remember."""
        messages = deps.runs.conversation_messages(who, conversation_id, limit=limit)
        return ConversationMessagesPage(
            conversation_id=conversation_id, messages=[ConversationMessageView.of(m) for m in messages]
        )

    # --- listings and housekeeping (issue 12, point 4) ---------------------------------------------
    @app.get("/v1/runs", response_model=RunsPage, responses=ERROR_RESPONSES, tags=["runs"])
    def list_runs(
        who: CallerDep,
        status: Annotated[RunStatus | None, Query(description="Only the runs in this status")] = None,
        conversation_id: Annotated[str | None, Query(
            alias="conversationId", pattern=IDENTIFIER_PATTERN, description="Only the runs of this conversation")] = None,
        limit: LimitQuery = DEFAULT_LIST_LIMIT,
        cursor: CursorQuery = None,
    ) -> RunsPage:
        """The org's runs that have not expired, newest first, as summaries (no output: read a run
        for that). A page holds `limit` runs whenever that many match; follow `nextCursor` until it
        is null."""
        listed = deps.listing.list_runs(who, status=status, conversation_id=conversation_id, limit=limit, cursor=cursor)
        return RunsPage(runs=[RunSummaryView.of(s) for s in listed.items], next_cursor=listed.next_cursor)

    @app.get("/v1/conversations", response_model=ConversationsPage, responses=ERROR_RESPONSES, tags=["conversations"])
    def list_conversations(who: CallerDep, limit: LimitQuery = DEFAULT_LIST_LIMIT, cursor: CursorQuery = None) -> ConversationsPage:
        """The org's conversations that have a stored turn, the latest turn first."""
        listed = deps.listing.list_conversations(who, limit=limit, cursor=cursor)
        return ConversationsPage(conversations=[ConversationView.of(c) for c in listed.items],
                                 next_cursor=listed.next_cursor)

    @app.delete(
        "/v1/conversations/{conversation_id}",
        status_code=204,
        response_class=Response,
        responses={**ERROR_RESPONSES, 404: {"description": "No such conversation in this org (or it has expired)"},
                   409: {"description": "`conversation_busy`: a run in it is queued, running or waiting; cancel it first"}},
        tags=["conversations"],
    )
    def delete_conversation(conversation_id: str, who: CallerDep) -> Response:
        """Delete a conversation's messages (what its next run would remember) and its pointer to its
        latest run. Its runs stay readable until they expire."""
        deps.listing.delete_conversation(who, conversation_id)
        return Response(status_code=204)
    if deps.webhooks is not None:
        install_webhook_routes(app, deps.webhooks)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
