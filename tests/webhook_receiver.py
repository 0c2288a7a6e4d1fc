"""A real HTTP server that receives webhooks, for functional and integration tests: it keeps every
request and answers each path with the statuses it was told to, in order (then 204)."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: str


class WebhookReceiver:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[ReceivedWebhook] = []
        self._answers: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                with receiver._arrived:
                    receiver.received.append(ReceivedWebhook(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                             body))
                    answers = receiver._answers.get(self.path, [])
                    status = answers.pop(0) if answers else 204
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}{path}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._answers[path] = list(statuses)

    def at(self, path: str) -> list[ReceivedWebhook]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 30.0) -> list[ReceivedWebhook]:
        """The first `count` requests to `path`, once they have come (or what came by `timeout`)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len([r for r in self.received if r.path == path]) >= count, timeout)
            return [r for r in self.received if r.path == path]
