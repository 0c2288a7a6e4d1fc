"""The `WebhookTransport` port over the standard library's `http.client`.

Why not httpx (in the layer only as anthropic's dependency): the connection must go to the address the
guard checked (`NetworkTargetGuard.pin`), with TLS still verified against the URL's host name (SNI and
certificate); `http.client` lets a connection subclass choose its socket in a few lines, where httpx's
transport would need its internals. Redirects are not followed (a 3xx is a failed attempt): a
redirect could point anywhere, and Standard Webhooks receivers answer 2xx.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

from ..errors import WebhookDeliveryError, WebhookTargetRefusedError
from .network_targets import NetworkTargetGuard

USER_AGENT = "runwire-webhooks/1"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class HTTPWebhookTransport:
    def __init__(self, guard: NetworkTargetGuard, *, timeout_seconds: float,
                 tls: ssl.SSLContext | None = None) -> None:
        self._guard = guard
        self._timeout = timeout_seconds
        self._tls = tls or ssl.create_default_context()

    def post(self, url: str, headers: dict[str, str], body: str) -> int:
        try:
            pinned = self._guard.pin(url)  # again at send time: DNS may have changed since registration
        except WebhookTargetRefusedError as exc:
            raise WebhookDeliveryError(f"refused target: {exc.message}") from None
        target = pinned.target
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            connection = _PinnedHTTPSConnection(target.host, target.port, pinned.address, self._timeout, self._tls)
        else:
            connection = _PinnedHTTPConnection(target.host, target.port, pinned.address, self._timeout)
        try:
            connection.request("POST", path, body=body.encode(), headers={**headers, "user-agent": USER_AGENT})
            response = connection.getresponse()
            response.read(64 * 1024)  # a little of the answer, so the connection closes cleanly
            return response.status
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, TLS, bad answer
            raise WebhookDeliveryError(f"no answer from {target.host} ({type(exc).__name__}: {exc})") from None
        finally:
            connection.close()
