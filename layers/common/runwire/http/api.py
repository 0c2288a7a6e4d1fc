"""The API app (StartRunFunction, behind API Gateway and Mangum): start, inspect, poll, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from ..adapters.tokens import JWTVerifier
from ..core.models import RunRecord, RunRequest
from ..core.run_service import RunService
from .auth import CallerDep
from .errors import install_error_handlers
from .views import EventsPage, RunView, StartRunResponse

ERROR_RESPONSES = {
    400: {"description": "Invalid request: `{\"error\": {\"code\", \"message\"}}`"},
    401: {"description": "Missing, invalid or expired token"},
    403: {"description": "The token does not grant the requested org"},
    404: {"description": "No such run in this org (or it has expired)"},
}


@dataclass(frozen=True)
class ApiDependencies:
    runs: RunService
    verifier: JWTVerifier
    stream_base_url: str | None


def create_api_app(deps: ApiDependencies) -> FastAPI:
    app = FastAPI(
        title="runwire API",
        version="0.1.0",
        description=(
            "Start agent runs and follow them. Stream a run's events from the stream URL "
            "(Server-Sent Events, resumable with `Last-Event-ID`), or poll `/v1/runs/{runId}/events`."
        ),
    )
    install_error_handlers(app)
    app.state.verifier = deps.verifier

    def started(request: Request, run: RunRecord, stream_path: str) -> JSONResponse:
        api_base = str(request.base_url).rstrip("/")
        stream_base = (deps.stream_base_url or api_base).rstrip("/")
        body = StartRunResponse(
            stream_id=run.run_id,
            run_id=run.run_id,
            status=run.status,
            stream_url=f"{stream_base}{stream_path.format(run_id=run.run_id)}",
            poll_url=f"{api_base}/v1/runs/{run.run_id}",
            events_url=f"{api_base}/v1/runs/{run.run_id}/events",
        )
        return JSONResponse(body.model_dump(by_alias=True, mode="json"), status_code=202)

    @app.post("/v1/runs", status_code=202, response_model=StartRunResponse, responses=ERROR_RESPONSES, tags=["runs"])
    def start_run(body: RunRequest, request: Request, who: CallerDep) -> JSONResponse:
        """Queue a run and answer at once with its ids and URLs."""
        return started(request, deps.runs.start(who, body), "/v1/runs/{run_id}/stream")

    @app.post("/ai/agent/stream", status_code=202, response_model=StartRunResponse, responses=ERROR_RESPONSES, tags=["seed 000"])
    def start_agent_stream(body: RunRequest, request: Request, who: CallerDep) -> JSONResponse:
        """Seed 000's step 1: same as `POST /v1/runs`; open `GET /ai/stream/{streamId}` next."""
        return started(request, deps.runs.start(who, body), "/ai/stream/{run_id}")

    @app.get("/v1/runs/{run_id}", response_model=RunView, responses=ERROR_RESPONSES, tags=["runs"])
    def get_run(run_id: str, who: CallerDep) -> RunView:
        """Status, timestamps, the output text so far, usage and error."""
        return RunView.of(deps.runs.snapshot(who, run_id))

    @app.get("/v1/runs/{run_id}/events", response_model=EventsPage, responses=ERROR_RESPONSES, tags=["runs"])
    def get_events(
        run_id: str,
        who: CallerDep,
        after: Annotated[int, Query(ge=0, description="Return the events after this seq")] = 0,
    ) -> EventsPage:
        """The run's events after `after`, as JSON: for clients that cannot hold a stream open."""
        snapshot = deps.runs.snapshot(who, run_id, after=after)
        return EventsPage.of(snapshot.run, snapshot.chunks, after)

    @app.post("/v1/runs/{run_id}/cancel", response_model=RunView, responses={**ERROR_RESPONSES, 409: {"description": "The run has already finished"}}, tags=["runs"])
    def cancel_run(run_id: str, who: CallerDep) -> RunView:
        """Stop a run. A queued run ends at once; a running one within about a second."""
        deps.runs.cancel(who, run_id)
        return RunView.of(deps.runs.snapshot(who, run_id))

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
