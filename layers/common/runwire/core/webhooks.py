"""Webhooks (issue 12, point 5): an org's endpoints, the events, their Standard Webhooks signature,
the retry schedule, and the service behind `/v1/webhooks`.

Standard Webhooks (https://www.standardwebhooks.com, spec/standard-webhooks.md):

- every request carries `webhook-id` (the same on every attempt, so a receiver dedupes), `webhook-timestamp`
  (epoch seconds of the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256>` of
  `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed by the secret's bytes (the base64 after `whsec_`);
- the body is `{"type", "timestamp", "data"}`; ours is thin (`data` names the run), so a receiver
  fetches the run for the rest and a leaked event shows little;
- failed attempts are retried on the spec's schedule ("Retry schedule"): immediately, then 5 s, 5 min,
  30 min, 2 h, 5 h, 10 h and 10 h after the previous failure.

Deliberate choices (docs/api.md, "Webhooks"): one signing secret per org, shared by its endpoints and by
runs' own `webhook` URLs ("a run's secret is the org's"), created when the org first needs one (its
first endpoint, its first run with a `webhook` once that run is accepted, or the secret route) and
readable by the org's callers with a bearer token (`GET /v1/webhooks/secret`: not with the cookie).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal, Protocol

from pydantic import ConfigDict, Field, StrictStr
from pydantic.alias_generators import to_camel

from ..errors import ConditionFailedError, WebhookLimitError, WebhookNotFoundError, WebhooksNotConfiguredError
from .models import Caller, RunRecord, RunRequest, RunStatus, WireModel
from .ports import Clock

log = logging.getLogger("runwire.webhooks")

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
"""The spec asks for 24 to 64 random bytes."""
SIGNATURE_VERSION = "v1"


class WebhookEventType(enum.StrEnum):
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_EXPIRED = "run.expired"
    RUN_REQUIRES_ACTION = "run.requires_action"


EVENT_TYPE_BY_STATUS = {
    RunStatus.SUCCEEDED: WebhookEventType.RUN_SUCCEEDED,
    RunStatus.FAILED: WebhookEventType.RUN_FAILED,
    RunStatus.CANCELLED: WebhookEventType.RUN_CANCELLED,
    RunStatus.EXPIRED: WebhookEventType.RUN_EXPIRED,
    RunStatus.REQUIRES_ACTION: WebhookEventType.RUN_REQUIRES_ACTION,
}
ALL_EVENT_TYPES = tuple(WebhookEventType)


# --- what is stored and what crosses the outbox queue --------------------------------------------
class WebhookEndpoint(WireModel):
    """An org's registered endpoint."""

    endpoint_id: StrictStr
    org_id: StrictStr
    url: StrictStr
    events: list[Annotated[WebhookEventType, Field(strict=False)]]
    created_at: float = Field(strict=False)

    def wants(self, event_type: WebhookEventType) -> bool:
        return event_type in self.events


class OutboxEvent(WireModel):
    """What a run's transition puts on the outbox queue: the sender fans it out to its destinations."""

    kind: Literal["event"] = "event"
    webhook_id: StrictStr
    type: WebhookEventType = Field(strict=False)
    org_id: StrictStr
    run_id: StrictStr
    status: RunStatus = Field(strict=False)
    conversation_id: StrictStr | None = None
    occurred_at: float = Field(strict=False)
    run_webhook_url: StrictStr | None = None
    """The run's own `webhook.url`, if it named one."""


class WebhookDelivery(WireModel):
    """One event for one destination: retried on its own, so a failing endpoint never holds up, nor
    re-sends to, the others. `body` is the exact JSON every attempt sends and signs."""

    kind: Literal["delivery"] = "delivery"
    webhook_id: StrictStr
    type: WebhookEventType = Field(strict=False)
    org_id: StrictStr
    run_id: StrictStr
    url: StrictStr
    endpoint_id: StrictStr | None = None
    """The registered endpoint it goes to (None: the run's own webhook URL). A deleted endpoint gets no more attempts."""
    body: StrictStr


OutboxMessage = Annotated[OutboxEvent | WebhookDelivery, Field(discriminator="kind")]


class RunEventData(WireModel):
    run_id: StrictStr
    status: RunStatus = Field(strict=False)
    org_id: StrictStr
    conversation_id: StrictStr | None = None


class WebhookEventBody(WireModel):
    """The request body, per the spec: `{"type", "timestamp" (ISO 8601), "data"}`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    type: WebhookEventType = Field(strict=False)
    timestamp: StrictStr
    data: RunEventData


def event_body(event: OutboxEvent) -> str:
    body = WebhookEventBody(
        type=event.type,
        timestamp=datetime.fromtimestamp(event.occurred_at, UTC).isoformat().replace("+00:00", "Z"),
        data=RunEventData(run_id=event.run_id, status=event.status, org_id=event.org_id,
                          conversation_id=event.conversation_id),
    )
    return body.model_dump_json(by_alias=True, exclude_none=True)


def webhook_id(run: RunRecord) -> str:
    """Deterministic, so a re-sent event keeps its id and the receiver can drop the duplicate: a run
    ends once, and waits as often as it likes (each wait has its own last seq)."""
    if run.status is RunStatus.REQUIRES_ACTION:
        return f"{run.run_id}_{run.status.value}_{run.last_seq}"
    return f"{run.run_id}_{run.status.value}"


def outbox_event(run: RunRecord, occurred_at: float) -> OutboxEvent | None:
    """The event a run's new status makes, or None for a status no webhook reports."""
    event_type = EVENT_TYPE_BY_STATUS.get(run.status)
    if event_type is None:
        return None
    return OutboxEvent(
        webhook_id=webhook_id(run), type=event_type, org_id=run.org_id, run_id=run.run_id, status=run.status,
        conversation_id=run.request.conversation_id, occurred_at=occurred_at,
        run_webhook_url=run.request.webhook.url if run.request.webhook else None,
    )


# --- the signature --------------------------------------------------------------------------------
def new_secret(random_bytes: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 after `whsec_` decoded (the spec signs with the bytes, not the text)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }


# --- retries --------------------------------------------------------------------------------------
STANDARD_RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
"""Seconds before each attempt (Standard Webhooks, "Retry schedule"): the first, immediate (0), then
each retry's delay after the previous attempt failed."""
MAX_RETRY_DELAY_SECONDS = 43_200
"""SQS's longest visibility timeout (12 h): a retry waits as a hidden message."""
MAX_ATTEMPT_SECONDS = 30
"""The longest `WEBHOOK_TIMEOUT_SECONDS`: one attempt's whole deadline (template.yaml's sender Timeout
leaves room for one attempt and the store reads around it; tests/unit/test_webhook_template.py)."""


@dataclass(frozen=True)
class RetrySchedule:
    delays: tuple[float, ...] = STANDARD_RETRY_SCHEDULE

    def __post_init__(self) -> None:
        if not self.delays or any(d < 0 or d > MAX_RETRY_DELAY_SECONDS for d in self.delays):
            raise ValueError(f"a retry schedule is one or more delays of 0 to {MAX_RETRY_DELAY_SECONDS} seconds")
        if self.delays[0] != 0:
            # A delivery is attempted as soon as it is fanned out: a first delay would not be honoured.
            raise ValueError(f"a retry schedule starts with 0 (the first attempt is immediate), not {self.delays[0]:g}")

    @property
    def attempts(self) -> int:
        return len(self.delays)

    def delay_after(self, failed_attempt: int) -> float | None:
        """Seconds to wait after attempt `failed_attempt` (counted from 1) failed; None when it was the last."""
        return self.delays[failed_attempt] if failed_attempt < len(self.delays) else None

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        """`"0,5,300"`: the delays in seconds, comma-separated."""
        return cls(tuple(float(part) for part in text.split(",") if part.strip()))


@dataclass(frozen=True)
class OutboxQueueLimits:
    """What template.yaml's `WebhookQueue` allows a delivery (tests/unit/test_webhook_template.py keeps
    these equal to the template's values)."""

    max_receive_count: int = 10
    """RedrivePolicy.maxReceiveCount: SQS dead-letters a message handed out more often than this."""
    retention_seconds: int = 345_600
    """MessageRetentionPeriod: SQS drops a message this long after it was sent, whatever its retries."""
    visibility_seconds: int = 120
    """VisibilityTimeout: the longest one attempt can hold its message (the sender's Timeout or less)."""

    def refusal(self, schedule: RetrySchedule) -> str | None:
        """Why the queue cannot honour `schedule`, or None when it can."""
        if schedule.attempts > self.max_receive_count:
            return (f"{schedule.attempts} attempts, but the webhook queue hands a message out at most "
                    f"{self.max_receive_count} times (its maxReceiveCount) before SQS dead-letters it")
        span = sum(schedule.delays) + schedule.attempts * self.visibility_seconds
        if span >= self.retention_seconds:
            return (f"the delays and attempts span up to {span:g} s, but the webhook queue keeps a message "
                    f"{self.retention_seconds} s (its MessageRetentionPeriod)")
        return None


# --- ports ------------------------------------------------------------------------------------------
class WebhookStore(Protocol):
    """An org's signing secret and endpoints (items of the runs table; `adapters.dynamodb_webhooks`)."""

    def ensure_secret(self, org_id: str, candidate: str) -> str:
        """The org's secret; `candidate` becomes it if it has none yet (concurrent callers agree on one)."""

    def secret(self, org_id: str) -> str | None:
        """The org's secret, or None if it never needed one."""

    def add_endpoint(self, endpoint: WebhookEndpoint, *, limit: int, secret_candidate: str) -> str:
        """Store `endpoint` unless the org has `limit` already (ConditionFailedError); ensures the org's
        secret as `ensure_secret` does, in the same write, and answers it."""

    def endpoints(self, org_id: str) -> list[WebhookEndpoint]:
        """The org's endpoints, oldest first."""

    def endpoint(self, org_id: str, endpoint_id: str) -> WebhookEndpoint | None: ...

    def delete_endpoint(self, org_id: str, endpoint_id: str) -> bool:
        """Remove it; False if there was no such endpoint."""


class WebhookOutbox(Protocol):
    """The outbox queue (`adapters.sqs_webhooks`)."""

    def send_event(self, event: OutboxEvent) -> None:
        """QueueUnavailableError when the queue does not take it."""

    def send_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        """All of them, or QueueUnavailableError (some may have been sent: they carry their webhook-id)."""

    def dead_letter(self, delivery: WebhookDelivery) -> None:
        """Keep a delivery whose attempts are exhausted for an operator to inspect."""


class TargetGuard(Protocol):
    def check(self, url: str) -> None:
        """WebhookTargetRefusedError unless `url` is a target the service may call."""


# --- the service behind /v1/webhooks -----------------------------------------------------------------
MAX_ENDPOINTS_PER_ORG = 10
ENDPOINT_ID_PREFIX = "we_"


@dataclass(frozen=True)
class RegisteredEndpoint:
    endpoint: WebhookEndpoint
    secret: str


class WebhookService:
    def __init__(
        self,
        store: WebhookStore,
        guard: TargetGuard,
        clock: Clock,
        random_bytes: Callable[[int], bytes],
        new_id: Callable[[], str],
        *,
        max_endpoints: int = MAX_ENDPOINTS_PER_ORG,
        delivering: bool = True,
    ) -> None:
        self._delivering = delivering
        """False: the deployment has no outbox, so no event would ever be sent; registrations are refused."""
        self._store = store
        self._guard = guard
        self._clock = clock
        self._random_bytes = random_bytes
        self._new_id = new_id
        self._max_endpoints = max_endpoints

    def register(self, caller: Caller, url: str, events: Sequence[WebhookEventType] | None) -> RegisteredEndpoint:
        self._require_delivery()
        self._guard.check(url)
        chosen = list(dict.fromkeys(events)) if events else list(ALL_EVENT_TYPES)
        endpoint = WebhookEndpoint(endpoint_id=ENDPOINT_ID_PREFIX + self._new_id(), org_id=caller.org_id, url=url,
                                   events=chosen, created_at=self._clock())
        try:
            secret = self._store.add_endpoint(endpoint, limit=self._max_endpoints, secret_candidate=self._candidate())
        except ConditionFailedError:
            raise WebhookLimitError(f"an org may register at most {self._max_endpoints} webhook endpoints; "
                                    "delete one first") from None
        log.info("webhook endpoint registered", extra={"org_id": caller.org_id, "endpoint_id": endpoint.endpoint_id})
        return RegisteredEndpoint(endpoint, secret)

    def endpoints(self, caller: Caller) -> list[WebhookEndpoint]:
        return self._store.endpoints(caller.org_id)

    def delete(self, caller: Caller, endpoint_id: str) -> None:
        if not self._store.delete_endpoint(caller.org_id, endpoint_id):
            raise WebhookNotFoundError(f"webhook endpoint {endpoint_id[:80]!r} does not exist")

    def secret(self, caller: Caller) -> str:
        return self._store.secret(caller.org_id) or self._store.ensure_secret(caller.org_id, self._candidate())

    def check_run_request(self, caller: Caller, request: RunRequest) -> None:
        """A run's `webhook.url` must be a callable target. Reads only: a start refused by this or a
        later check leaves nothing written (`prepare_run` creates the secret once the run is accepted)."""
        if request.webhook is None:
            return
        self._require_delivery()
        self._guard.check(request.webhook.url)

    def prepare_run(self, caller: Caller, run: RunRecord) -> None:
        """A run with a `webhook` that passed every check is about to be stored: its events are signed
        with the org's secret, which exists from here on (`GET /v1/webhooks/secret` reads it)."""
        if run.request.webhook is not None:
            self.secret(caller)

    def _require_delivery(self) -> None:
        if not self._delivering:
            raise WebhooksNotConfiguredError("this deployment sends no webhooks (it has no WEBHOOK_QUEUE_URL)")

    def _candidate(self) -> str:
        return new_secret(self._random_bytes(SECRET_BYTES))
