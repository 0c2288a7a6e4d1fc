"""The stream app (StreamFunction: uvicorn behind the Lambda Web Adapter, RESPONSE_STREAM).

The managed Python runtime cannot stream a response and Mangum buffers one, so this app runs
as a plain ASGI server that the Lambda Web Adapter proxies, and Lambda streams its bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse

from ..adapters.tokens import JWTVerifier
from ..core.models import Caller, RunRecord, StoredChunk
from ..core.ports import Clock, RunStore
from ..core.tailing import KeepAlive, PollPolicy, tail_chunks
from ..errors import InvalidRequestError, RunNotFoundError
from ..formats.base import StreamContext, StreamFormat
from .auth import CallerDep
from .errors import install_error_handlers

After = Annotated[int | None, Query(ge=0, description="Replay the events after this seq")]
Format = Annotated[str | None, Query(alias="format", description="Wire format; default `runwire` (seed 000)")]

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class StreamDependencies:
    store: RunStore
    verifier: JWTVerifier
    formats: dict[str, StreamFormat]
    default_format: str
    poll_policy: PollPolicy
    clock: Clock


def parse_resume_point(last_event_id: str | None, after: int | None) -> int:
    """`Last-Event-ID` (what EventSource sends on reconnect) wins over `?after=`."""
    if last_event_id is not None and last_event_id.strip() != "":
        try:
            value = int(last_event_id.strip())
        except ValueError:
            raise InvalidRequestError("Last-Event-ID must be the seq (an integer) of the last event received") from None
        if value < 0:
            raise InvalidRequestError("Last-Event-ID must not be negative")
        return value
    return after or 0


class RunStreamer:
    """Serves one run's chunks in a chosen format, from a resume point, until its end event."""

    def __init__(self, deps: StreamDependencies) -> None:
        self._deps = deps

    async def open(self, caller: Caller, run_id: str) -> RunRecord:
        run = await anyio.to_thread.run_sync(self._deps.store.get_run, caller.org_id, run_id)
        if run is None:
            raise RunNotFoundError(f"stream {run_id!r} does not exist or has expired")
        return run

    def pick_format(self, name: str | None) -> StreamFormat:
        name = name or self._deps.default_format
        try:
            return self._deps.formats[name]
        except KeyError:
            known = ", ".join(sorted(self._deps.formats))
            raise InvalidRequestError(f"unknown format {name!r}; known formats: {known}") from None

    async def body(self, caller: Caller, run_id: str, fmt: StreamFormat, context: StreamContext) -> AsyncIterator[bytes]:
        store = self._deps.store
        encoder = fmt.encoder(context)

        async def read(position: int) -> list[StoredChunk]:
            return await anyio.to_thread.run_sync(lambda: store.read_chunks(caller.org_id, run_id, after=position))

        async def alive() -> bool:
            return await anyio.to_thread.run_sync(store.get_run, caller.org_id, run_id) is not None

        opening = encoder.open()
        if opening:
            yield opening
        async for item in tail_chunks(
            read, alive, after=context.resumed_after, policy=self._deps.poll_policy, clock=self._deps.clock, sleep=asyncio.sleep
        ):
            data = encoder.ping() if isinstance(item, KeepAlive) else encoder.encode(item)
            if data:
                yield data

    async def response(self, caller: Caller, run_id: str, after: int, format_name: str | None) -> Response:
        fmt = self.pick_format(format_name)
        run = await self.open(caller, run_id)
        if run.status.is_terminal:
            pending = await anyio.to_thread.run_sync(
                lambda: self._deps.store.read_chunks(caller.org_id, run_id, after=after, limit=1)
            )
            if not pending:
                # Nothing left to send. 204 also tells an EventSource to stop reconnecting.
                return Response(status_code=204)
        context = StreamContext(run=run, resumed_after=after)
        return StreamingResponse(
            self.body(caller, run_id, fmt, context),
            media_type=fmt.media_type,
            headers={**SSE_HEADERS, **fmt.headers(context)},
        )


def create_stream_app(deps: StreamDependencies) -> FastAPI:
    app = FastAPI(
        title="runwire streams",
        version="0.1.0",
        description="Server-Sent Events for runs. Resume with `Last-Event-ID` or `?after=N`.",
    )
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

    @app.get("/ai/stream/{stream_id}", tags=["seed 000"], response_class=StreamingResponse)
    async def stream_seed000(
        stream_id: str, request: Request, caller: CallerDep, after: After = None, format_name: Format = None
    ) -> Response:
        """Seed 000's step 2: `event: data` per chunk, then `event: end`."""
        return await streamer.response(
            caller, stream_id, parse_resume_point(request.headers.get("last-event-id"), after), format_name
        )

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
