"""Which URLs the service may call on a user's behalf (webhooks now; a web-fetch tool later).

A URL a user names must not reach what only the service can reach: the cloud's metadata endpoint
(169.254.169.254), the VPC, the machine itself. So its host — a literal address, or every address its
name resolves to — must be globally routable: loopback, private (RFC 1918, fc00::/7), shared
(100.64.0.0/10), link-local, unspecified, multicast, reserved and documentation ranges are refused,
as are IPv6 forms that carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4
2002::/16, Teredo), judged by the IPv4 address inside. Schemes: https only.

The check runs when a URL is registered and again before each request, on the addresses resolved for
that request; `PinnedAddress` then connects to the addresses that were checked (each in turn, all of
them checked first), not to a second answer from DNS (a name that rebinds to a private address between
the check and the connection is defeated). `pin(url, timeout=…)` bounds the resolution: `getaddrinfo`
has no timeout of its own, so it runs on a daemon thread that is abandoned when the time is up.

`ALLOW_PRIVATE_NETWORK_TARGETS=true` (local stacks and tests) lifts every address rule and allows http.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import WebhookTargetRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA), as the connection would see them."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # no such name, a label too long, an embedded NUL
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in answers))


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why the service may not connect to `address`, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal_reason(inner)
            return f"{reason} (inside {address})" if reason else None
        if address.scope_id:
            return "a scoped (link-local) address"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
    )
    for refused, name in checks:
        if refused:
            return f"a {name} address"
    if not address.is_global:  # shared address space (100.64.0.0/10) and the rest IANA calls non-global
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class PinnedAddress:
    """A checked target and the addresses to connect to, in the resolver's order (every one was checked)."""

    target: Target
    addresses: tuple[str, ...]


def resolve_within(resolve: Resolver, host: str, port: int, timeout: float) -> list[str] | None:
    """`resolve(host, port)`, or None when it has not answered within `timeout` seconds. The resolution
    carries on in its daemon thread (the system resolver cannot be interrupted) and its answer is dropped."""
    answers: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
    threading.Thread(target=lambda: answers.put(resolve(host, port)), name=f"resolve {host}", daemon=True).start()
    try:
        return answers.get(timeout=max(timeout, 0.0))
    except queue.Empty:
        return None


class NetworkTargetGuard:
    """The `TargetGuard` port (core.webhooks), and the resolution before each request."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self._allow_private = allow_private
        self._resolve = resolve

    @property
    def schemes(self) -> tuple[str, ...]:
        return ("https", "http") if self._allow_private else ("https",)

    def target(self, url: str) -> Target:
        """The URL's scheme, host and port, or WebhookTargetRefusedError for one the service never calls."""
        if not url.isascii() or any(not c.isprintable() or c.isspace() for c in url):
            # What goes on the request line must be printable ASCII (RFC 3986); a space or a newline
            # there would split the request.
            raise WebhookTargetRefusedError("a webhook URL must be printable ASCII without spaces "
                                            "(percent-encode the rest, and use the host's punycode form)")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise WebhookTargetRefusedError(f"{url[:200]!r} is not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            raise WebhookTargetRefusedError(
                f"a webhook URL must be {' or '.join(self.schemes)}, not {scheme or 'schemeless'}: {url[:200]!r}")
        if not parts.hostname:
            raise WebhookTargetRefusedError(f"{url[:200]!r} names no host")
        if parts.username is not None or parts.password is not None:
            raise WebhookTargetRefusedError("a webhook URL may not carry credentials (user:password@)")
        return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80))

    def check(self, url: str) -> None:
        self.pin(url)

    def pin(self, url: str, *, timeout: float | None = None) -> PinnedAddress:
        """Resolve the URL's host (within `timeout` seconds, when given) and check every address it
        resolves to: all of them are the ones to connect to."""
        target = self.target(url)
        addresses = self._addresses(target, timeout)
        if not self._allow_private:
            for address in addresses:
                reason = refusal_reason(ipaddress.ip_address(address))
                if reason is not None:
                    shown = target.host if target.host == address else f"{target.host} ({address})"
                    raise WebhookTargetRefusedError(
                        f"{shown} is {reason}: webhooks go to public addresses only "
                        "(ALLOW_PRIVATE_NETWORK_TARGETS=true lifts this on a local stack)")
        return PinnedAddress(target, tuple(addresses))

    def _addresses(self, target: Target, timeout: float | None) -> list[str]:
        try:
            return [str(ipaddress.ip_address(target.host))]  # a literal address
        except ValueError:
            pass
        if timeout is None:
            addresses: list[str] | None = self._resolve(target.host, target.port)
        else:
            addresses = resolve_within(self._resolve, target.host, target.port, timeout)
            if addresses is None:
                raise WebhookTargetRefusedError(f"{target.host!r} did not resolve within {timeout:.3g} s")
        if not addresses:
            raise WebhookTargetRefusedError(f"{target.host!r} does not resolve to any address")
        return addresses
