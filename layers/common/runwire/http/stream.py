"""The stream app (StreamFunction: uvicorn behind the Lambda Web Adapter, RESPONSE_STREAM).

The managed Python runtime cannot stream a response and Mangum buffers one, so this app runs
as a plain ASGI server that the Lambda Web Adapter proxies, and Lambda streams its bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from ..adapters.tokens import JWTVerifier
from ..core.actions import ActionService, RunAnswers
from ..core.models import ApprovalDecision, Caller, RunRecord, RunRequest, RunStatus, StoredChunk, ToolOutput
from ..core.ports import Clock, RunStore
from ..core.reading import RunReader, parse_resume_point
from ..core.run_service import RunService
from ..core.tailing import KeepAlive, Liveness, PollPolicy, Recovering, tail_chunks
from ..errors import InvalidRequestError, NotWaitingError, RunConflictError, RunNotFoundError
from ..formats.base import StreamContext, StreamFormat
from ..formats.ui_message_stream import UI_MESSAGE_STREAM
from .auth import CallerDep
from .errors import install_error_handlers
from .openapi import operation_id
from .playground import add_playground_routes
from .surfaces import OnDisconnect, add_surface_routes
from .unknown_fields import refuse_unknown_fields_on_v1

After = Annotated[int | None, Query(ge=0, description="Replay the events after this seq")]
Format = Annotated[str | None, Query(
    alias="format", description="Wire format: `runwire` (the default), `ui-message-stream`, `chat-events` or `content-final`"
)]

log = logging.getLogger("runwire.stream")

class StreamRunRequest(RunRequest):
    """`POST /v1/runs/stream`: a run request; the run is streamed in the same response."""

    on_disconnect: OnDisconnect = Field(
        default="cancel",
        description="`cancel` (default): the run stops when the client goes away; "
        "`continue`: it runs on, to be read later from its stream URL",
    )

    def run_request(self) -> RunRequest:
        return RunRequest.model_validate(self.model_dump(exclude={"on_disconnect"}), strict=False)


class OneShotResponse(StreamingResponse):
    """A streaming response that knows whether its body ran to the end. Starlette cancels the
    body when the client disconnects (ASGI `http.disconnect`); then `on_abandoned` runs."""

    def __init__(self, content: AsyncIterator[bytes], *, on_abandoned: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(self._tracked(content), **kwargs)
        self.completed = False
        self._on_abandoned = on_abandoned

    async def _tracked(self, content: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for data in content:
            yield data
        self.completed = True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.completed:
                with anyio.CancelScope(shield=True):
                    await self._on_abandoned()


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class StreamDependencies:
    runs: RunService
    actions: ActionService
    store: RunStore
    verifier: JWTVerifier
    formats: dict[str, StreamFormat]
    default_format: str
    poll_policy: PollPolicy
    clock: Clock


def stream_headers(fmt: StreamFormat, context: StreamContext) -> dict[str, str]:
    """Ours, then the format's, merged by lower-cased name (HTTP header names are case-insensitive)."""
    merged: dict[str, str] = {}
    for name, value in [*SSE_HEADERS.items(), ("X-Run-Id", context.run.run_id), *fmt.headers(context).items()]:
        merged[name.lower()] = value
    return merged


class RunStreamer:
    """Serves one run's chunks in a chosen format, from a resume point, until its end event."""

    def __init__(self, deps: StreamDependencies) -> None:
        self._deps = deps
        self._reader = RunReader(deps.runs, deps.store, deps.clock)

    async def open(self, caller: Caller, run_id: str) -> RunRecord:
        return await anyio.to_thread.run_sync(self._deps.runs.get, caller, run_id)

    def pick_format(self, name: str | None) -> StreamFormat:
        name = name or self._deps.default_format
        try:
            return self._deps.formats[name]
        except KeyError:
            known = ", ".join(sorted(self._deps.formats))
            raise InvalidRequestError(f"unknown format {name!r}; known formats: {known}") from None

    async def body(self, caller: Caller, run_id: str, fmt: StreamFormat, context: StreamContext) -> AsyncIterator[bytes]:
        reader = self._reader
        encoder = fmt.encoder(context)

        async def read(position: int) -> list[StoredChunk]:
            return await anyio.to_thread.run_sync(lambda: reader.read(caller, run_id, after=position))

        async def alive(position: int) -> Liveness:
            return await anyio.to_thread.run_sync(lambda: reader.liveness(caller, run_id, position=position))

        opening = encoder.open()
        if opening:
            yield opening
        async for item in tail_chunks(
            read, alive, after=context.resumed_after, policy=self._deps.poll_policy, clock=self._deps.clock, sleep=asyncio.sleep
        ):
            if isinstance(item, KeepAlive):
                data = encoder.ping()
            elif isinstance(item, Recovering):
                data = encoder.recovering()
            else:
                data = encoder.encode(item)
            if data:
                yield data
            if encoder.finished:
                return  # this format's response is complete (its end, or a wait it cannot stay open for)

    async def response(self, caller: Caller, run_id: str, after: int, format_name: str | None) -> Response:
        fmt = self.pick_format(format_name)
        run = await anyio.to_thread.run_sync(lambda: self._reader.open(caller, run_id, after=after))
        if run is None:
            return Response(status_code=204)  # finished, nothing after `after`: EventSource stops too
        context = StreamContext(run=run, resumed_after=after)
        return StreamingResponse(
            self.body(caller, run_id, fmt, context),
            media_type=fmt.media_type,
            headers=stream_headers(fmt, context),
        )

    async def one_shot(
        self, caller: Caller, request: RunRequest, fmt: StreamFormat, on_disconnect: OnDisconnect
    ) -> Response:
        """Create the run and stream it in this response."""
        run = await anyio.to_thread.run_sync(self._deps.runs.start, caller, request)
        return self._follow(caller, run, fmt, StreamContext(run=run), on_disconnect)

    async def run(self, caller: Caller, run_id: str) -> RunRecord:
        """The caller's run (RunNotFoundError for another org's)."""
        return await anyio.to_thread.run_sync(self._deps.runs.get, caller, run_id)

    async def active_run(self, caller: Caller, conversation_id: str) -> RunRecord | None:
        """The conversation's latest run (the one a follow-up request may answer)."""
        return await anyio.to_thread.run_sync(self._deps.runs.active_run, caller, conversation_id)

    async def answer(
        self, caller: Caller, run: RunRecord, *, outputs: list[ToolOutput], decisions: list[ApprovalDecision],
        fmt: StreamFormat, on_disconnect: OnDisconnect,
    ) -> Response:
        """Record the client's answers to the run's wait, then stream the rest of the run in this
        response: from just after the wait, or, while it still waits for other answers, the wait
        itself again (what is left to answer). The same answers again (a retry) stream the same."""
        answered = await anyio.to_thread.run_sync(self._record_answers, caller, run.run_id, outputs, decisions)
        still_waiting = answered.status is RunStatus.REQUIRES_ACTION
        context = StreamContext(run=answered, resumed_after=answered.last_seq - 1 if still_waiting else answered.last_seq)
        return self._follow(caller, answered, fmt, context, on_disconnect)

    def _record_answers(
        self, caller: Caller, run_id: str, outputs: list[ToolOutput], decisions: list[ApprovalDecision]
    ) -> RunRecord:
        answers = RunAnswers(outputs=outputs, decisions=decisions)
        if answers.empty:
            raise NotWaitingError(f"the request answers nothing run {run_id!r} is waiting for")
        return self._deps.actions.submit(caller, run_id, answers).run

    def _follow(
        self, caller: Caller, run: RunRecord, fmt: StreamFormat, context: StreamContext, on_disconnect: OnDisconnect
    ) -> Response:
        """Stream the run in this response; if the client leaves first, cancel the run, unless
        `on_disconnect` is `continue`."""
        runs = self._deps.runs

        async def abandoned() -> None:
            if on_disconnect != "cancel":
                log.info("client left its stream; the run continues", extra={"run_id": run.run_id})
                return
            log.info("client left its stream; cancelling the run", extra={"run_id": run.run_id})
            try:
                await anyio.to_thread.run_sync(runs.cancel, caller, run.run_id)
            except (RunConflictError, RunNotFoundError):
                pass  # it finished (or expired) meanwhile

        return OneShotResponse(
            self.body(caller, run.run_id, fmt, context),
            on_abandoned=abandoned,
            media_type=fmt.media_type,
            headers=stream_headers(fmt, context),
        )

    async def active_message(self, caller: Caller, conversation_id: str, fmt: StreamFormat) -> Response:
        """The conversation's in-flight run, replayed from its start and followed live; 204 if none."""
        run = await anyio.to_thread.run_sync(self._deps.runs.active_run, caller, conversation_id)
        if run is None or run.status.is_terminal:
            return Response(status_code=204)
        context = StreamContext(run=run)
        return StreamingResponse(
            self.body(caller, run.run_id, fmt, context),
            media_type=fmt.media_type,
            headers=stream_headers(fmt, context),
        )


def create_stream_app(deps: StreamDependencies) -> FastAPI:
    app = FastAPI(
        title="runwire streams",
        version="0.1.0",
        description="Server-Sent Events for runs. Resume with `Last-Event-ID` or `?after=N`.",
        # Under the one base URL the API app serves /docs and /openapi.json, for both apps' routes.
        openapi_url=None,
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
    )
    refuse_unknown_fields_on_v1(app)
    install_error_handlers(app)
    app.state.verifier = deps.verifier
    streamer = RunStreamer(deps)

    @app.get("/v1/runs/{run_id}/stream", tags=["streams"], response_class=StreamingResponse)
    async def stream_run(
        run_id: str, request: Request, caller: CallerDep, after: After = None, format_name: Format = None
    ) -> Response:
        """The run's events as Server-Sent Events, ending with `event: end`."""
        return await streamer.response(
            caller, run_id, parse_resume_point(request.headers.get("last-event-id"), after), format_name
        )

    @app.get("/ai/stream/{stream_id}", tags=["two-step stream"], response_class=StreamingResponse)
    async def stream_two_step(
        stream_id: str, request: Request, caller: CallerDep, after: After = None, format_name: Format = None
    ) -> Response:
        """Step 2 of the two-step stream: `event: data` per chunk, then `event: end`."""
        return await streamer.response(
            caller, stream_id, parse_resume_point(request.headers.get("last-event-id"), after), format_name
        )

    @app.post("/v1/runs/stream", tags=["streams"], response_class=StreamingResponse)
    async def start_and_stream(body: StreamRunRequest, caller: CallerDep, format_name: Format = None) -> Response:
        """The one-request variant: create the run and stream it in this response. When the client
        disconnects the run is cancelled, unless `onDisconnect` is `continue`."""
        return await streamer.one_shot(caller, body.run_request(), streamer.pick_format(format_name), body.on_disconnect)

    add_surface_routes(app, streamer, deps.runs.catalog)

    @app.get("/api/agent/chat/{conversation_id}/stream", tags=["AI SDK UI message stream"],
             response_class=StreamingResponse)
    async def resume_chat(conversation_id: str, caller: CallerDep) -> Response:
        """Resume a chat: the conversation's active assistant message, replayed from its `start`
        and followed live, as an AI SDK UI message stream; 204 when nothing is active."""
        return await streamer.active_message(caller, conversation_id, UI_MESSAGE_STREAM)

    @app.get("/api/agent/chat/stream/{chat_id}/stream", tags=["AI SDK UI message stream"],
             response_class=StreamingResponse)
    async def resume_ai_sdk_chat(chat_id: str, caller: CallerDep) -> Response:
        """The same, at the AI SDK's default resume URL (`DefaultChatTransport`: `{api}/{chatId}/stream`):
        the chat's `id` is its conversation when the request named no `conversationId`."""
        return await streamer.active_message(caller, chat_id, UI_MESSAGE_STREAM)

    add_playground_routes(app)

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
