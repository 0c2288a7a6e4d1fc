"""The client's errors: one shallow tree, as openai-python's.

`APIError` is any answer of the server that is not a success, with its status and the
`{"error": {"code", "message", …}}` body the API sends; a subclass per status a caller acts on.
`APIConnectionError` is a request that got no answer (refused, reset, timed out). Lower-layer
exceptions (httpx's) never leave the client: `mapped_transport_errors` turns them into these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


class RunwireClientError(Exception):
    """Every error this package raises."""


class APIConnectionError(RunwireClientError):
    """No answer from the server: the connection failed, was cut, or timed out."""


class StreamError(RunwireClientError):
    """A stream that could not be followed to its end within the retries allowed."""


class APIError(RunwireClientError):
    """The server answered with an error status."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body

    @property
    def details(self) -> dict[str, Any]:
        """The error object's fields besides `code` and `message` (e.g. `activeRunId`)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if not isinstance(error, dict):
            return {}
        return {k: v for k, v in error.items() if k not in ("code", "message")}


class BadRequestError(APIError):
    """400: a field missing, wrongly typed or unknown; the message names it."""


class AuthenticationError(APIError):
    """401: no token, or one that is expired or not signed with the server's secret."""


class PaymentRequiredError(APIError):
    """402 with another code than `INSUFFICIENT_BALANCE` (its `code` and `message` say what)."""


class InsufficientBalanceError(PaymentRequiredError):
    """402 `INSUFFICIENT_BALANCE`: the org's balance does not cover the run."""

    @property
    def required(self) -> Any:
        return self.details.get("required")

    @property
    def available(self) -> Any:
        return self.details.get("available")


class PermissionDeniedError(APIError):
    """403: the org asked for is not in the token."""


class NotFoundError(APIError):
    """404: no such run or conversation in this org (or it has expired)."""


class ConflictError(APIError):
    """409: the run or conversation is not in a state that allows this (`run_conflict`,
    `not_waiting`, `conversation_busy` with `active_run_id`)."""

    @property
    def active_run_id(self) -> str | None:
        value = self.details.get("activeRunId")
        return value if isinstance(value, str) else None


class RequestTooLargeError(APIError):
    """413: the request (or the answers it would keep) is too large."""


class RateLimitError(APIError):
    """429: too many requests (raised once the retries allowed are spent)."""


class InternalServerError(APIError):
    """5xx: trouble on the server's side (503s are retried first)."""


STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    429: RateLimitError,
}


def error_from_response(status: int, body: Any, fallback_text: str = "") -> APIError:
    """The error for one answer: the class by status, `code` and `message` from the body."""
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    if status == 402 and code.upper() == "INSUFFICIENT_BALANCE":
        error_type: type[APIError] = InsufficientBalanceError
    elif status >= 500:
        error_type = InternalServerError
    else:
        error_type = STATUS_ERRORS.get(status, APIError)
    return error_type(status, code or f"http_{status}", message or fallback_text[:500] or "no message", body)


@contextmanager
def mapped_transport_errors() -> Iterator[None]:
    """httpx's timeouts and connection failures become `APIConnectionError`."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise APIConnectionError(f"the request timed out: {exc}") from exc
    except httpx.TransportError as exc:
        raise APIConnectionError(f"the connection failed: {exc}") from exc
