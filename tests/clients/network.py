"""What stands between a client and the API in these tests, on 127.0.0.1:

- `StreamProxy`: forwards everything to the stack, and does to `text/event-stream` answers what a
  bad network does: cuts the first connections after a few events (`cut_after`), or holds the whole
  body back as a buffering proxy does (`hold`). It records each stream request's `Last-Event-ID`.
- `ScriptedServer`: answers each request with the next of a list of (status, headers, body), and
  records when each came: 503 then 200, a 402 body, a 429 that does not end.
- `SSEServer`: answers stream connection n with the SSE bytes `bodies[n]` (the last repeats), then
  closes it cleanly (or holds it open): pings only, an id-less status event between numbered ones.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ConnectionCut(Exception):
    """Raised inside a streamed body: uvicorn drops the connection without ending the chunked body."""


@dataclass
class StreamProxy:
    upstream: str
    cut_after: int | None = None
    """Cut each of the first `cuts` stream connections after this many events with an id (0: at once)."""
    cuts: int = 1
    hold: bool = False
    """Send a stream's headers, then nothing (a proxy that buffers `text/event-stream`)."""
    resume_ids: list[str | None] = field(default_factory=list)
    """Each stream request's Last-Event-ID, in order."""

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST", "DELETE"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> StreamProxy:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    async def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS | {"host"}}
        client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        upstream = await client.send(
            client.build_request(request.method, f"{self.upstream}{request.url.path}", params=request.query_params,
                                 headers=headers, content=await request.body()),
            stream=True,
        )
        answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
        if not upstream.headers.get("content-type", "").startswith("text/event-stream"):
            body = await upstream.aread()
            await upstream.aclose()
            await client.aclose()
            return Response(body, status_code=upstream.status_code, headers=answer_headers)
        with self._lock:
            self.resume_ids.append(request.headers.get("last-event-id"))
            connection = len(self.resume_ids)
        cut_after = self.cut_after if connection <= self.cuts else None
        return StreamingResponse(self._events(upstream, client, cut_after), status_code=upstream.status_code,
                                 headers=answer_headers)

    async def _events(self, upstream: httpx.Response, client: httpx.AsyncClient, cut_after: int | None) -> AsyncIterator[bytes]:
        try:
            if self.hold:
                async for _ in upstream.aiter_raw():
                    pass  # read and keep nothing back: the client gets nothing until it gives up
                await asyncio.sleep(3600)
            if cut_after == 0:
                raise ConnectionCut("cut before the first event")
            buffer, sent = b"", 0
            async for raw in upstream.aiter_raw():
                buffer += raw
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    yield event + b"\n\n"
                    if event.startswith(b"id:") or b"\nid:" in event:
                        sent += 1
                        if cut_after is not None and sent >= cut_after:
                            raise ConnectionCut(f"cut after {sent} events")
        finally:
            await upstream.aclose()
            await client.aclose()


@dataclass
class ScriptedAnswer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0
    """How long the server takes before answering (a start that is slow to come back)."""


class ScriptedServer:
    """Answers request n with `answers[n]` (the last one repeats); records (monotonic time, method, path)."""

    def __init__(self, answers: list[ScriptedAnswer]) -> None:
        self.answers = answers
        self.requests: list[tuple[float, str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                server.requests.append((time.monotonic(), self.command, self.path))
                answer = server.answers[min(len(server.requests), len(server.answers)) - 1]
                time.sleep(answer.hold_seconds)
                body = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()


class SSEServer:
    """Stream connection n gets `bodies[n]` (the last repeats), then a clean close (HTTP/1.0, no
    length: the body ends with the connection), or, with `hold_open`, nothing more until the server
    stops. Records each connection's Last-Event-ID."""

    def __init__(self, bodies: list[bytes], *, hold_open: bool = False) -> None:
        self.bodies = bodies
        self.resume_ids: list[str | None] = []
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.resume_ids.append(self.headers.get("last-event-id"))
                body = server.bodies[min(len(server.resume_ids), len(server.bodies)) - 1]
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-store")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if hold_open:
                    server._stopping.wait(30)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> SSEServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._http.shutdown()
        self._http.server_close()


class ClosingCounter(httpx.AsyncHTTPTransport):
    """httpx's own transport, counting the responses it has opened and not yet closed."""

    def __init__(self) -> None:
        super().__init__()
        self.open_responses = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.open_responses += 1
        return httpx.Response(response.status_code, headers=response.headers, extensions=response.extensions,
                              stream=_CountedStream(response.stream, self))


class _CountedStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any, counter: ClosingCounter) -> None:
        self._inner = inner
        self._counter = counter

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            yield part

    async def aclose(self) -> None:
        await self._inner.aclose()
        self._counter.open_responses -= 1
