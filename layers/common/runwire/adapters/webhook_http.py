"""The `WebhookTransport` port over the standard library's `http.client`.

Why not httpx (in the layer only as anthropic's dependency): the connection must go to the addresses the
guard checked (`NetworkTargetGuard.pin`), with TLS still verified against the URL's host name (SNI and
certificate); `http.client` lets a connection subclass choose its socket in a few lines, where httpx's
transport would need its internals. Redirects are not followed (a 3xx is a failed attempt): a
redirect could point anywhere, and Standard Webhooks receivers answer 2xx.

One attempt has one wall-clock deadline, `timeout_seconds` after it starts: resolving the name,
connecting, the TLS handshake, sending and reading the answer's status all end by then. A socket's
timeout bounds each operation, not their sum (a receiver trickling a byte every few seconds would hold
the attempt, and the sender's whole invocation, as long as it liked), so each operation starts with the
time left, and `AttemptDeadline`'s timer shuts the connection down at the deadline, which also ends a
handshake or a read that is still trickling along then.

The checked addresses are tried in the resolver's order until one connects (and, for https, completes
the handshake); once a request has been sent, no other address is tried (that would send it twice).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from ..errors import WebhookDeliveryError, WebhookTargetRefusedError
from .network_targets import NetworkTargetGuard, PinnedAddress

USER_AGENT = "runwire-webhooks/1"


class AttemptDeadline:
    """The moment an attempt must be over, and a timer that shuts its connections down then."""

    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self._at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self._expired or self.remaining() <= 0

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock`'s connection down at the deadline. The timer keeps a duplicate of its descriptor,
        which still reaches the connection after TLS has taken the socket over."""
        duplicate = sock.dup()
        with self._lock:
            self._watched.append(duplicate)
            if self._expired:
                _shut_down(duplicate)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            watched, self._watched = self._watched, []
            for duplicate in watched:
                duplicate.close()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for duplicate in self._watched:
                _shut_down(duplicate)


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # a blocked recv or handshake in the other thread returns at once
    except OSError:
        pass  # closed already


def _open_socket(address: str, port: int, deadline: AttemptDeadline) -> socket.socket:
    remaining = deadline.remaining()
    if remaining <= 0:
        raise TimeoutError("the attempt's time was up before connecting")
    sock = socket.create_connection((address, port), remaining)
    try:
        deadline.watch(sock)
        sock.settimeout(max(deadline.remaining(), 0.001))
    except OSError:
        sock.close()
        raise
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, deadline: AttemptDeadline) -> None:
        super().__init__(host, port, timeout=max(deadline.remaining(), 0.001))
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = _open_socket(self._address, self.port, self._deadline)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, deadline: AttemptDeadline,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=max(deadline.remaining(), 0.001), context=context)
        self._address = address
        self._deadline = deadline
        self._context = context

    def connect(self) -> None:
        raw = _open_socket(self._address, self.port, self._deadline)
        try:
            self.sock = self._context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class HTTPWebhookTransport:
    def __init__(self, guard: NetworkTargetGuard, *, timeout_seconds: float,
                 tls: ssl.SSLContext | None = None) -> None:
        self._guard = guard
        self._timeout = timeout_seconds
        self._tls = tls or ssl.create_default_context()

    def post(self, url: str, headers: dict[str, str], body: str) -> int:
        deadline = AttemptDeadline(self._timeout)
        try:
            return self._post(url, headers, body, deadline)
        finally:
            deadline.close()

    def _post(self, url: str, headers: dict[str, str], body: str, deadline: AttemptDeadline) -> int:
        try:
            # Again at send time (DNS may have changed since registration), within the attempt's time.
            pinned = self._guard.pin(url, timeout=deadline.remaining())
        except WebhookTargetRefusedError as exc:
            raise WebhookDeliveryError(f"refused target: {exc.message}") from None
        host = pinned.target.host
        connection = self._connect(pinned, deadline)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            self._arm(connection, deadline)
            connection.request("POST", path, body=body.encode(), headers={**headers, "user-agent": USER_AGENT})
            self._arm(connection, deadline)
            response = connection.getresponse()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:  # reset, timed out, a bad answer
            if deadline.expired:
                raise WebhookDeliveryError(f"no answer from {host} within {self._timeout:g} s") from None
            raise WebhookDeliveryError(f"no answer from {host} ({type(exc).__name__}: {exc})") from None
        else:
            try:
                response.read(64 * 1024)  # a little of the answer, so the connection closes cleanly
            except (OSError, http.client.HTTPException):
                pass  # the status is the answer; a body cut short (or by the deadline) changes nothing
            return status
        finally:
            connection.close()

    def _connect(self, pinned: PinnedAddress, deadline: AttemptDeadline) -> http.client.HTTPConnection:
        """A connection to the first checked address that takes one (each in turn, within the deadline)."""
        target = pinned.target
        failures: list[str] = []
        for address in pinned.addresses:
            if deadline.expired:
                failures.append(f"{address}: not tried, the attempt's {self._timeout:g} s were up")
                break
            connection: http.client.HTTPConnection
            if target.scheme == "https":
                connection = _PinnedHTTPSConnection(target.host, target.port, address, deadline, self._tls)
            else:
                connection = _PinnedHTTPConnection(target.host, target.port, address, deadline)
            try:
                connection.connect()
                return connection
            except OSError as exc:  # refused, unreachable, timed out, TLS
                connection.close()
                reason = "timed out" if deadline.expired else f"{type(exc).__name__}: {exc}"
                failures.append(f"{address}: {reason}")
        raise WebhookDeliveryError(f"no answer from {target.host} ({'; '.join(failures)})")

    @staticmethod
    def _arm(connection: http.client.HTTPConnection, deadline: AttemptDeadline) -> None:
        """Each operation gets the time left (the deadline's timer ends one still running then)."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError("the attempt's time was up")
        if connection.sock is not None:
            connection.sock.settimeout(remaining)
