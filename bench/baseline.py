"""The baseline: what a pipeline-less design gives. No queue, no table.

    python -m uvicorn --factory bench.baseline:app_from_environment --port P
                                                   (JWT_SECRET, SCRIPTED_TOKEN_DELAY_MS from the env)

One uvicorn process runs the SAME `ScriptedProvider` as the worker, in a thread (the worker's
producer thread), and streams each token straight to the client as it is emitted, in the same
wire format as the stream function (seed 000's `id:` / `event: data` / `data: {"type":"text",...}`,
then `event: end`), after the same JWT check. What the pipeline adds is measured against this.

`POST /v1/runs/stream` takes `{"task": ...}` like the pipeline's one-shot route.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from runwire.adapters.scripted_provider import ScriptedProvider
from runwire.adapters.tokens import JWTVerifier
from runwire.core.cancellation import CancellationToken
from runwire.core.models import EndChunk, RunStatus, StoredChunk, TextChunk
from runwire.core.ports import ModelRequest, TextDelta
from runwire.core.transcript import Message, TextBlock
from runwire.formats.runwire_events import encode_chunk_event
from runwire.http.auth import CallerDep

_DONE = object()


class BaselineRequest(BaseModel):
    task: str


def model_events(provider: ScriptedProvider, task: str, loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[Any], cancellation: CancellationToken) -> None:
    """The producer thread: the model's text deltas onto the event loop's queue, as emitted."""
    request = ModelRequest(model="scripted-1", system="", messages=[Message("user", (TextBlock(task),))])
    try:
        for event in provider.stream(request, cancellation):
            if isinstance(event, TextDelta):
                loop.call_soon_threadsafe(queue.put_nowait, event.text)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, _DONE)


def create_baseline_app(secret: str, token_delay_seconds: float) -> FastAPI:
    app = FastAPI(title="runwire bench baseline")
    app.state.verifier = JWTVerifier(secret)
    provider = ScriptedProvider(time.time, token_delay_seconds=token_delay_seconds)

    async def stream(task: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancellation = CancellationToken()
        producer = threading.Thread(
            target=model_events, args=(provider, task, loop, queue, cancellation), daemon=True
        )
        producer.start()
        seq = 0
        try:
            while (text := await queue.get()) is not _DONE:
                seq += 1
                yield encode_chunk_event(StoredChunk(seq=seq, chunk=TextChunk(text=text), written_at=time.time()))
            seq += 1
            yield encode_chunk_event(
                StoredChunk(seq=seq, chunk=EndChunk(status=RunStatus.SUCCEEDED), written_at=time.time())
            )
        finally:
            cancellation.cancel()

    @app.post("/v1/runs/stream")
    async def run_and_stream(body: BaselineRequest, caller: CallerDep) -> StreamingResponse:
        return StreamingResponse(stream(body.task), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def app_from_environment() -> FastAPI:
    return create_baseline_app(os.environ["JWT_SECRET"], float(os.environ.get("SCRIPTED_TOKEN_DELAY_MS", "15")) / 1000)

