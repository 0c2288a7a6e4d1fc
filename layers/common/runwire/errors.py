"""The one error tree.

Every error the system raises on purpose is a `RunwireError` with a stable machine-readable
`code`. The HTTP layer (`runwire.http.errors`) maps classes to status codes; the worker maps
model errors to error chunks. Nothing here knows about HTTP or boto.
"""

from __future__ import annotations

from typing import Any


class RunwireError(Exception):
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}


# --- request problems (client's fault) -------------------------------------------------------
class InvalidRequestError(RunwireError):
    code = "invalid_request"


class RequestTooLargeError(InvalidRequestError):
    code = "request_too_large"


class UnknownAgentError(InvalidRequestError):
    code = "unknown_agent"


class OrgRequiredError(InvalidRequestError):
    code = "org_required"


class WebhookTargetRefusedError(InvalidRequestError):
    """A webhook URL that may not be called: not https, or a private, loopback or link-local address."""

    code = "webhook_target_refused"


class WebhooksNotConfiguredError(InvalidRequestError):
    """This deployment has no webhook outbox (WEBHOOK_QUEUE_URL): a webhook would never be sent."""

    code = "webhooks_not_configured"


class WebhookLimitError(InvalidRequestError):
    code = "webhook_limit_reached"


class AuthenticationError(RunwireError):
    code = "unauthenticated"


class OrgForbiddenError(RunwireError):
    code = "org_forbidden"


class NotFoundError(RunwireError):
    code = "not_found"


class RunNotFoundError(NotFoundError):
    code = "run_not_found"


class WebhookNotFoundError(NotFoundError):
    code = "webhook_not_found"


class RunConflictError(RunwireError):
    """The run is not in a state that allows the operation (e.g. cancelling a finished run)."""

    code = "run_conflict"


class NotWaitingError(RunConflictError):
    """An answer that the run is not waiting for: an unknown or foreign id, or a second, different answer."""

    code = "not_waiting"


class ConversationBusyError(RunConflictError):
    """The conversation's run is still going: a run started on it with `multitaskStrategy` `reject`,
    or a delete of its messages (which would lose the turn that run writes)."""

    code = "conversation_busy"


class RunFailedError(RunwireError):
    """A sync call's run ended without an answer; `code` is the run's own error code."""

    code = "run_failed"


# --- infrastructure ---------------------------------------------------------------------------
class StorageError(RunwireError):
    code = "storage_error"


class ConditionFailedError(StorageError):
    """A conditional write lost: the item exists already, or is not in the expected state."""

    code = "condition_failed"


class LeaseLostError(ConditionFailedError):
    """Another worker took the run over (this one's lease had lapsed): it must write nothing more."""

    code = "lease_lost"


class QueueUnavailableError(RunwireError):
    code = "queue_unavailable"


class ConfigurationError(RunwireError):
    code = "configuration_error"


class WebhookDeliveryError(RunwireError):
    """One attempt to POST a webhook failed (refused target, no connection, timeout, a non-2xx answer)."""

    code = "webhook_delivery_failed"


# --- the model provider -----------------------------------------------------------------------
class ModelError(RunwireError):
    """The model provider failed. Unless the core retries it (`retryable`), the run ends `failed`
    with an error chunk carrying `code`."""

    code = "model_error"
    retryable = False
    """A later call may well succeed (overload, rate limit, server error, broken stream)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after
        """Seconds the provider asked us to wait before trying again (its retry-after header), if it said."""


class ModelOverloadedError(ModelError):
    code = "model_overloaded"
    retryable = True


class ModelRateLimitedError(ModelError):
    code = "model_rate_limited"
    retryable = True


class ModelUnavailableError(ModelError):
    code = "model_unavailable"
    retryable = True


class ModelStreamInterruptedError(ModelError):
    code = "model_stream_interrupted"
    retryable = True


class ModelRequestRejectedError(ModelError):
    """The provider refused the request itself (bad model id, bad key, request too large)."""

    code = "model_request_rejected"


# --- tools ------------------------------------------------------------------------------------
class ToolError(RunwireError):
    code = "tool_error"


# --- listings and conversations ---------------------------------------------------------------
class InvalidCursorError(InvalidRequestError):
    """A listing's `cursor` that this listing did not hand out: malformed, altered, or from another
    org or filter."""

    code = "invalid_cursor"


class ConversationNotFoundError(NotFoundError):
    code = "conversation_not_found"
