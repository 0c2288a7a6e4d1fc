"""Requests with retries: a 429 or 503 is tried again after the server's `Retry-After` (bounded).

A 429 is refused before anything is stored, so every request is retried on one. A 503 is retried
except on the POSTs that start a run (`/v1/runs`, `/v1/runs/wait`, `/v1/runs/stream`): storage can
fail after the run was stored and queued, and a second try would start a second run. Cancels and
answers (tool outputs, approvals) are idempotent (docs/api.md), so they are retried on a 503 too.
Without `Retry-After`, the wait doubles from `backoff_seconds`. A `Retry-After` longer than
`max_wait_seconds` is not waited for: the error is raised at once, so a caller is never held for an
hour by a header.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import error_from_response, mapped_transport_errors

RETRIED_STATUSES = frozenset({429, 503})
RUN_STARTING_PATHS = ("/v1/runs", "/v1/runs/wait", "/v1/runs/stream")
"""POSTs to these start a run: a 503 on them is not retried (it may come after the run started)."""


def starts_a_run(request: httpx.Request) -> bool:
    """Whether `request` starts a run (the base URL may have a path of its own, e.g. a stage)."""
    path = request.url.path.rstrip("/")
    return request.method == "POST" and path.endswith(RUN_STARTING_PATHS)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    """Retries after the first attempt, for 429 answers, and 503 ones but on a run's start."""
    max_wait_seconds: float = 60.0
    """The longest `Retry-After` honoured; a longer one raises at once."""
    backoff_seconds: float = 0.5
    """The first wait when the server names none; it doubles on each retry (with jitter)."""

    def delay(self, response: httpx.Response, retries_done: int) -> float | None:
        """Seconds to wait before trying `response`'s request again, or None not to."""
        if response.status_code not in RETRIED_STATUSES or retries_done >= self.max_retries:
            return None
        if response.status_code == 503 and starts_a_run(response.request):
            return None
        asked = retry_after_seconds(response.headers.get("retry-after"))
        if asked is None:
            return self.backoff_seconds * (2**retries_done) * (1 + random.random() / 4)
        return asked if asked <= self.max_wait_seconds else None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (RFC 9110 § 10.2.3: delay-seconds or an HTTP-date), None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def raise_for_error(response: httpx.Response) -> None:
    """An error status becomes the `APIError` subclass for it (read the body first on streams)."""
    if response.is_success:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    raise error_from_response(response.status_code, body, response.text if body is None else "")


def send(client: httpx.Client, policy: RetryPolicy, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
    """Send, retrying 429 (and 503 but on a run's start) per `policy`; the last answer, success or not."""
    retries = 0
    while True:
        with mapped_transport_errors():
            response = client.send(request, stream=stream)
        wait = policy.delay(response, retries)
        if wait is None:
            return response
        response.close()
        time.sleep(wait)
        retries += 1


async def send_async(
    client: httpx.AsyncClient, policy: RetryPolicy, request: httpx.Request, *, stream: bool = False
) -> httpx.Response:
    retries = 0
    while True:
        with mapped_transport_errors():
            response = await client.send(request, stream=stream)
        wait = policy.delay(response, retries)
        if wait is None:
            return response
        await response.aclose()
        await asyncio.sleep(wait)
        retries += 1


def json_of(response: httpx.Response) -> Any:
    """The body of a successful answer, or the error it carries raised."""
    raise_for_error(response)
    return response.json() if response.content else None


__all__ = ["RetryPolicy", "json_of", "raise_for_error", "retry_after_seconds", "send", "send_async", "starts_a_run"]
