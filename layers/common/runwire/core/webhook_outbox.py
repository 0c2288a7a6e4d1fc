"""From a run's transition to a signed POST: the outbox's two ends.

1. `NotifyingRunStore` wraps the run store: every transition that a webhook reports (succeeded, failed,
   cancelled, expired, requires_action) goes through its `finish` or `suspend`, whoever makes it (the
   worker, a cancel, a reader or the sweep expiring a wait, `core.ending`). After the write commits,
   `WebhookNotifier` puts one thin `OutboxEvent` on the outbox queue, if the run named a `webhook` or its
   org has an endpoint subscribed to the event (the org's endpoints are cached briefly per process).
2. `WebhookSender` (the sender function) fans each event out into one `WebhookDelivery` per destination,
   then makes each delivery's attempts on the retry schedule: a failed attempt hides its message for the
   schedule's next delay (the queue redelivers it then); the last failed attempt sends it to the
   dead-letter queue.

Sending to the outbox is not in the run's DynamoDB transaction: when the queue refuses an event after
botocore's retries, that event is lost (logged, `WebhookEventsLost`). Every hop after it is at least once,
and a delivery keeps its `webhook-id` across attempts and re-sends, so a receiver dedupes.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import RunwireError, WebhookDeliveryError
from .models import Chunk, Lease, PendingAction, RunError, RunRecord, RunStatus, StoredChunk, Usage
from .ports import Clock, Delivery, RunStore
from .webhooks import (
    OutboxEvent,
    RetrySchedule,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
    WebhookStore,
    event_body,
    outbox_event,
    signed_headers,
)

log = logging.getLogger("runwire.webhooks")


class WebhookMetrics(Protocol):
    def webhook_event_lost(self) -> None:
        """A transition's event never reached the outbox queue."""

    def webhook_delivered(self) -> None: ...

    def webhook_attempt_failed(self) -> None: ...

    def webhook_exhausted(self) -> None:
        """A delivery failed its last attempt and went to the dead-letter queue."""


class NullWebhookMetrics:
    def webhook_event_lost(self) -> None:
        pass

    def webhook_delivered(self) -> None:
        pass

    def webhook_attempt_failed(self) -> None:
        pass

    def webhook_exhausted(self) -> None:
        pass


class WebhookNotifier:
    def __init__(self, store: WebhookStore, outbox: WebhookOutbox, clock: Clock, *, cache_seconds: float,
                 metrics: WebhookMetrics | None = None) -> None:
        self._store = store
        self._outbox = outbox
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._metrics = metrics or NullWebhookMetrics()
        self._cache: dict[str, tuple[float, list[WebhookEndpoint]]] = {}
        self._lock = threading.Lock()

    def run_changed(self, run: RunRecord) -> None:
        """Put the event of `run`'s new status on the outbox, if anyone wants it. Never raises: the
        transition has committed, and its caller must carry on."""
        event = outbox_event(run, self._clock())
        if event is None:
            return
        try:
            if event.run_webhook_url is None and not any(e.wants(event.type) for e in self._endpoints(run.org_id)):
                return
            self._outbox.send_event(event)
        except RunwireError:
            log.exception("the webhook event could not be put on the outbox; it is lost",
                          extra={"run_id": run.run_id, "webhook_id": event.webhook_id})
            self._metrics.webhook_event_lost()

    def _endpoints(self, org_id: str) -> list[WebhookEndpoint]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(org_id)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        endpoints = self._store.endpoints(org_id)
        with self._lock:
            self._cache[org_id] = (now, endpoints)
        return endpoints


class NotifyingRunStore:
    """A `RunStore` that tells the notifier about every finish and suspend that committed."""

    def __init__(self, inner: RunStore, notifier: WebhookNotifier) -> None:
        self._inner = inner
        self._notifier = notifier

    def finish(
        self,
        org_id: str,
        run_id: str,
        target: RunStatus,
        *,
        expected: RunStatus,
        end_seq: int,
        finished_at: float,
        usage: Usage | None,
        error: RunError | None,
        preceding: Sequence[Chunk] = (),
        retain_until: int | None = None,
        owner: str | None = None,
    ) -> RunRecord:
        run = self._inner.finish(org_id, run_id, target, expected=expected, end_seq=end_seq, finished_at=finished_at,
                                 usage=usage, error=error, preceding=preceding, retain_until=retain_until, owner=owner)
        self._notifier.run_changed(run)
        return run

    def suspend(
        self,
        org_id: str,
        run_id: str,
        *,
        first_seq: int,
        chunks: Sequence[Chunk],
        actions: list[PendingAction],
        action_expires_at: float,
        usage: Usage | None,
        expires_at: int,
        owner: str | None = None,
    ) -> RunRecord:
        run = self._inner.suspend(org_id, run_id, first_seq=first_seq, chunks=chunks, actions=actions,
                                  action_expires_at=action_expires_at, usage=usage, expires_at=expires_at, owner=owner)
        self._notifier.run_changed(run)
        return run

    # --- everything else, as the inner store does it -----------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        self._inner.create_run(run)

    def delete_run(self, org_id: str, run_id: str) -> None:
        self._inner.delete_run(org_id, run_id)

    def get_run(self, org_id: str, run_id: str) -> RunRecord | None:
        return self._inner.get_run(org_id, run_id)

    def transition(
        self, org_id: str, run_id: str, target: RunStatus, *, changes: dict[str, Any] | None = None
    ) -> RunRecord:
        # Only ever to queued, running, or back to requires_action when a requeue failed
        # (core.actions): no new event. Terminal statuses and new waits go through finish and suspend.
        return self._inner.transition(org_id, run_id, target, changes=changes)

    def request_cancel(self, org_id: str, run_id: str) -> RunRecord:
        return self._inner.request_cancel(org_id, run_id)

    def claim(self, org_id: str, run_id: str, *, lease: Lease, now: float, expires_at: int) -> RunRecord:
        return self._inner.claim(org_id, run_id, lease=lease, now=now, expires_at=expires_at)

    def take_over(self, org_id: str, run_id: str, *, lease: Lease, previous_owner: str | None, now: float) -> RunRecord:
        return self._inner.take_over(org_id, run_id, lease=lease, previous_owner=previous_owner, now=now)

    def renew_lease(self, org_id: str, run_id: str, *, lease: Lease, live_usage: Usage | None) -> tuple[RunStatus, bool]:
        return self._inner.renew_lease(org_id, run_id, lease=lease, live_usage=live_usage)

    def append_chunk(
        self, org_id: str, run_id: str, seq: int, chunk: Chunk, *, expires_at: int, owner: str | None = None
    ) -> StoredChunk:
        return self._inner.append_chunk(org_id, run_id, seq, chunk, expires_at=expires_at, owner=owner)

    def record_answers(self, run: RunRecord, actions: list[PendingAction], *, requeue: bool) -> RunRecord:
        return self._inner.record_answers(run, actions, requeue=requeue)

    def cancel_state(self, org_id: str, run_id: str) -> tuple[RunStatus, bool] | None:
        return self._inner.cancel_state(org_id, run_id)

    def extend_chunks(self, org_id: str, run_id: str, *, through_seq: int, expires_at: int) -> None:
        self._inner.extend_chunks(org_id, run_id, through_seq=through_seq, expires_at=expires_at)

    def overdue_waiting_runs(self, *, now: float, limit: int, since: float = 0.0) -> list[tuple[str, str]]:
        return self._inner.overdue_waiting_runs(now=now, limit=limit, since=since)

    def lapsed_leases(self, *, before: float, since: float, limit: int) -> list[tuple[str, str]]:
        return self._inner.lapsed_leases(before=before, since=since, limit=limit)

    def read_chunks(
        self, org_id: str, run_id: str, *, after: int, limit: int = 1000, consistent: bool = False
    ) -> list[StoredChunk]:
        return self._inner.read_chunks(org_id, run_id, after=after, limit=limit, consistent=consistent)


# --- the sender ------------------------------------------------------------------------------------
class WebhookTransport(Protocol):
    def post(self, url: str, headers: dict[str, str], body: str) -> int:
        """POST `body` and answer the response's status; WebhookDeliveryError when there is none (a
        refused target, no connection, a timeout)."""


class Outcome(enum.StrEnum):
    FANNED_OUT = "fanned_out"
    DELIVERED = "delivered"
    RETRY = "retry"
    """The attempt failed; the message is hidden until the next attempt: report it as a failure."""
    EXHAUSTED = "exhausted"
    DROPPED = "dropped"
    """Its endpoint was deleted, or its org has no secret: nothing to send, nothing to retry."""


class WebhookSender:
    def __init__(self, store: WebhookStore, outbox: WebhookOutbox, transport: WebhookTransport, clock: Clock,
                 schedule: RetrySchedule, metrics: WebhookMetrics | None = None) -> None:
        self._store = store
        self._outbox = outbox
        self._transport = transport
        self._clock = clock
        self._schedule = schedule
        self._metrics = metrics or NullWebhookMetrics()

    def process(self, message: OutboxEvent | WebhookDelivery, *, attempt: int, delivery: Delivery) -> Outcome:
        """`attempt`: how many times the queue has handed this message out (1 the first time)."""
        if isinstance(message, OutboxEvent):
            self.fan_out(message)
            return Outcome.FANNED_OUT
        return self.deliver(message, attempt=attempt, delivery=delivery)

    def fan_out(self, event: OutboxEvent) -> list[WebhookDelivery]:
        """One delivery per destination: the org's endpoints subscribed to the event (read now, not
        cached), then the run's own URL unless an endpoint has it already."""
        body = event_body(event)
        destinations: list[tuple[str, str | None]] = [(e.url, e.endpoint_id) for e in self._store.endpoints(event.org_id) if e.wants(event.type)]
        if event.run_webhook_url and event.run_webhook_url not in {url for url, _ in destinations}:
            destinations.append((event.run_webhook_url, None))
        deliveries = [
            WebhookDelivery(webhook_id=event.webhook_id, type=event.type, org_id=event.org_id, run_id=event.run_id,
                            url=url, endpoint_id=endpoint_id, body=body)
            for url, endpoint_id in destinations
        ]
        if deliveries:
            self._outbox.send_deliveries(deliveries)
        return deliveries

    def deliver(self, item: WebhookDelivery, *, attempt: int, delivery: Delivery) -> Outcome:
        context = {"run_id": item.run_id, "webhook_id": item.webhook_id, "url": item.url, "attempt": attempt}
        if item.endpoint_id is not None and self._store.endpoint(item.org_id, item.endpoint_id) is None:
            log.info("the webhook endpoint was deleted; its delivery is dropped", extra=context)
            return Outcome.DROPPED
        secret = self._store.secret(item.org_id)
        if secret is None:  # an org gets its secret before its first endpoint or webhook run
            log.error("the org has no webhook secret; the delivery is dropped", extra=context)
            return Outcome.DROPPED
        # A fresh timestamp (and so signature) per attempt: receivers refuse old timestamps (replay).
        headers = signed_headers(secret, item.webhook_id, int(self._clock()), item.body)
        try:
            status = self._transport.post(item.url, headers, item.body)
            if 200 <= status < 300:
                log.info("webhook delivered", extra={**context, "status": status})
                self._metrics.webhook_delivered()
                return Outcome.DELIVERED
            reason = f"the receiver answered {status}"
        except WebhookDeliveryError as exc:
            reason = exc.message
        self._metrics.webhook_attempt_failed()
        delay = self._schedule.delay_after(attempt)
        if delay is None:
            log.error("webhook delivery failed its last attempt (%s); sent to the dead-letter queue", reason,
                      extra=context)
            self._outbox.dead_letter(item)
            self._metrics.webhook_exhausted()
            return Outcome.EXHAUSTED
        log.warning("webhook attempt failed (%s); next attempt in %g s", reason, delay, extra=context)
        delivery.keep_invisible(math.ceil(delay))  # SQS counts whole seconds
        return Outcome.RETRY
