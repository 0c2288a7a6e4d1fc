"""The outbox's two ends on in-memory fakes: which transitions put an event on the outbox, and how the
sender fans it out and retries each destination on its own."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import standardwebhooks

from runwire.adapters.memory import InMemoryRunStore
from runwire.adapters.memory_webhooks import InMemoryWebhookOutbox, InMemoryWebhookStore
from runwire.core.ending import end_stopped_run
from runwire.core.models import RunRecord, RunRequest, RunStatus, RunWebhook
from runwire.core.webhook_outbox import NotifyingRunStore, Outcome, WebhookNotifier, WebhookSender
from runwire.core.webhooks import (
    ALL_EVENT_TYPES,
    OutboxEvent,
    RetrySchedule,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    new_secret,
    outbox_event,
)
from runwire.errors import QueueUnavailableError, WebhookDeliveryError

SECRET = new_secret(b"k" * 32)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(InMemoryWebhookStore):
    def __init__(self) -> None:
        super().__init__()
        self.listings = 0

    def endpoints(self, org_id: str) -> list[WebhookEndpoint]:
        self.listings += 1
        return super().endpoints(org_id)


class RefusingOutbox(InMemoryWebhookOutbox):
    def send_event(self, event: OutboxEvent) -> None:
        raise QueueUnavailableError("down")


class LostCounter:
    def __init__(self) -> None:
        self.lost = self.delivered = self.failed = self.exhausted = 0

    def webhook_event_lost(self) -> None:
        self.lost += 1

    def webhook_delivered(self) -> None:
        self.delivered += 1

    def webhook_attempt_failed(self) -> None:
        self.failed += 1

    def webhook_exhausted(self) -> None:
        self.exhausted += 1


def endpoint(url: str, events=ALL_EVENT_TYPES, org: str = "acme", endpoint_id: str = "we_1") -> WebhookEndpoint:
    return WebhookEndpoint(endpoint_id=endpoint_id, org_id=org, url=url, events=list(events), created_at=1.0)


def queued_run(clock: FakeClock, webhook: str | None = None, org: str = "acme") -> RunRecord:
    return RunRecord(
        run_id="run_" + uuid.uuid4().hex, org_id=org, user_id="u1", agent_id="ag_chat", status=RunStatus.QUEUED,
        request=RunRequest(task="hi", webhook=RunWebhook(url=webhook) if webhook else None),
        created_at=clock(), expires_at=int(clock()) + 300,
    )


def notifying(store: InMemoryWebhookStore, outbox: InMemoryWebhookOutbox, clock: FakeClock,
              metrics: LostCounter | None = None) -> NotifyingRunStore:
    return NotifyingRunStore(InMemoryRunStore(clock),
                             WebhookNotifier(store, outbox, clock, cache_seconds=30, metrics=metrics))


# --- the notifier ------------------------------------------------------------------------------------
def test_cancelling_a_run_with_a_webhook_puts_one_cancelled_event_on_the_outbox() -> None:
    clock, hooks, outbox = FakeClock(), InMemoryWebhookStore(), InMemoryWebhookOutbox()
    runs = notifying(hooks, outbox, clock)
    run = queued_run(clock, webhook="https://hooks.example.com/r")
    runs.create_run(run)

    end_stopped_run(runs, run, RunStatus.CANCELLED, None, clock())

    assert [(e.type, e.run_id, e.run_webhook_url) for e in outbox.events] == [
        (WebhookEventType.RUN_CANCELLED, run.run_id, "https://hooks.example.com/r")]


def test_a_run_nobody_listens_to_makes_no_event() -> None:
    clock, hooks, outbox = FakeClock(), InMemoryWebhookStore(), InMemoryWebhookOutbox()
    hooks.add_endpoint(endpoint("https://a.example.com", [WebhookEventType.RUN_FAILED]), limit=10,
                       secret_candidate=SECRET)
    runs = notifying(hooks, outbox, clock)
    run = queued_run(clock)
    runs.create_run(run)

    end_stopped_run(runs, run, RunStatus.CANCELLED, None, clock())  # the endpoint wants failures only

    assert outbox.events == []


def test_the_orgs_endpoints_are_read_once_per_cache_period() -> None:
    clock, hooks, outbox = FakeClock(), CountingStore(), InMemoryWebhookOutbox()
    hooks.add_endpoint(endpoint("https://a.example.com"), limit=10, secret_candidate=SECRET)
    runs = notifying(hooks, outbox, clock)
    for _ in range(3):
        run = queued_run(clock)
        runs.create_run(run)
        end_stopped_run(runs, run, RunStatus.CANCELLED, None, clock())
    clock.now += 31
    run = queued_run(clock)
    runs.create_run(run)
    end_stopped_run(runs, run, RunStatus.CANCELLED, None, clock())

    assert len(outbox.events) == 4 and hooks.listings == 2


def test_an_outbox_that_refuses_the_event_does_not_undo_or_fail_the_transition() -> None:
    clock, hooks, metrics = FakeClock(), InMemoryWebhookStore(), LostCounter()
    runs = notifying(hooks, RefusingOutbox(), clock, metrics)
    run = queued_run(clock, webhook="https://hooks.example.com/r")
    runs.create_run(run)

    ended = end_stopped_run(runs, run, RunStatus.CANCELLED, None, clock())

    assert ended.status is RunStatus.CANCELLED and metrics.lost == 1
    stored = runs.get_run("acme", run.run_id)
    assert stored is not None and stored.status is RunStatus.CANCELLED


# --- the sender ----------------------------------------------------------------------------------------
class ScriptedTransport:
    """Answers each POST with the next status of `answers` (an exception is raised), and keeps the requests."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, str], str]] = []

    def post(self, url: str, headers: dict[str, str], body: str) -> int:
        self.requests.append((url, headers, body))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class RecordedVisibility:
    def __init__(self) -> None:
        self.hidden_for: list[int] = []

    def keep_invisible(self, seconds: int) -> None:
        self.hidden_for.append(seconds)


def event_for(clock: FakeClock, status: RunStatus = RunStatus.SUCCEEDED, webhook: str | None = None) -> OutboxEvent:
    run = queued_run(clock, webhook=webhook).model_copy(update={"status": status})
    event = outbox_event(run, clock())
    assert event is not None
    return event


@pytest.fixture
def parts():
    clock, hooks, outbox = FakeClock(), InMemoryWebhookStore(), InMemoryWebhookOutbox()
    hooks.ensure_secret("acme", SECRET)
    return clock, hooks, outbox


def test_an_event_fans_out_to_subscribed_endpoints_and_the_runs_own_url_once_each(parts) -> None:
    clock, hooks, outbox = parts
    hooks.add_endpoint(endpoint("https://a.example.com/all", endpoint_id="we_a"), limit=10, secret_candidate=SECRET)
    hooks.add_endpoint(endpoint("https://b.example.com/failed", [WebhookEventType.RUN_FAILED], endpoint_id="we_b"),
                       limit=10, secret_candidate=SECRET)
    sender = WebhookSender(hooks, outbox, ScriptedTransport(), clock, RetrySchedule())

    outcome = sender.process(event_for(clock, webhook="https://run.example.com/hook"), attempt=1,
                             delivery=RecordedVisibility())

    assert outcome is Outcome.FANNED_OUT
    assert [(d.url, d.endpoint_id) for d in outbox.deliveries] == [
        ("https://a.example.com/all", "we_a"), ("https://run.example.com/hook", None)]
    assert len({d.webhook_id for d in outbox.deliveries}) == 1


def test_a_runs_url_that_is_also_a_registered_endpoint_gets_the_event_once(parts) -> None:
    clock, hooks, outbox = parts
    hooks.add_endpoint(endpoint("https://a.example.com/x"), limit=10, secret_candidate=SECRET)
    WebhookSender(hooks, outbox, ScriptedTransport(), clock, RetrySchedule()).fan_out(
        event_for(clock, webhook="https://a.example.com/x"))
    assert [d.url for d in outbox.deliveries] == ["https://a.example.com/x"]


def delivery_for(clock: FakeClock, hooks: InMemoryWebhookStore, outbox: InMemoryWebhookOutbox) -> WebhookDelivery:
    WebhookSender(hooks, outbox, ScriptedTransport(), clock, RetrySchedule()).fan_out(
        event_for(clock, webhook="https://run.example.com/hook"))
    return outbox.deliveries[-1]


def test_a_delivery_is_posted_signed_so_the_receiver_verifies_it(parts) -> None:
    clock, hooks, outbox = parts
    item = delivery_for(clock, hooks, outbox)
    transport, metrics = ScriptedTransport(204), LostCounter()
    clock.now = time.time()

    outcome = WebhookSender(hooks, outbox, transport, clock, RetrySchedule(), metrics).deliver(
        item, attempt=1, delivery=RecordedVisibility())

    assert outcome is Outcome.DELIVERED and metrics.delivered == 1
    ((url, headers, body),) = transport.requests
    payload = standardwebhooks.Webhook(SECRET).verify(body, headers)
    assert url == "https://run.example.com/hook" and headers["webhook-id"] == item.webhook_id
    assert payload == json.loads(item.body) and payload["type"] == "run.succeeded"


@pytest.mark.parametrize("answer", [500, 302, 410, WebhookDeliveryError("timed out")])
def test_a_failed_attempt_hides_the_delivery_until_the_schedules_next_attempt(parts, answer) -> None:
    clock, hooks, outbox = parts
    item = delivery_for(clock, hooks, outbox)
    visibility = RecordedVisibility()

    outcome = WebhookSender(hooks, outbox, ScriptedTransport(answer), clock, RetrySchedule()).deliver(
        item, attempt=2, delivery=visibility)

    assert outcome is Outcome.RETRY and visibility.hidden_for == [300] and outbox.dead_letters == []


def test_the_last_failed_attempt_sends_the_delivery_to_the_dead_letter_queue(parts) -> None:
    clock, hooks, outbox = parts
    item = delivery_for(clock, hooks, outbox)
    visibility, metrics = RecordedVisibility(), LostCounter()

    outcome = WebhookSender(hooks, outbox, ScriptedTransport(503), clock, RetrySchedule.parse("0,1,1"),
                            metrics).deliver(item, attempt=3, delivery=visibility)

    assert outcome is Outcome.EXHAUSTED and outbox.dead_letters == [item]
    assert visibility.hidden_for == [] and metrics.exhausted == 1


def test_a_deleted_endpoint_gets_no_more_attempts(parts) -> None:
    clock, hooks, outbox = parts
    hooks.add_endpoint(endpoint("https://a.example.com/x", endpoint_id="we_gone"), limit=10, secret_candidate=SECRET)
    sender = WebhookSender(hooks, outbox, ScriptedTransport(), clock, RetrySchedule())
    (item,) = sender.fan_out(event_for(clock))
    hooks.delete_endpoint("acme", "we_gone")

    assert sender.deliver(item, attempt=2, delivery=RecordedVisibility()) is Outcome.DROPPED
