"""Webhooks' pure parts: the Standard Webhooks signature (checked by the `standardwebhooks` package, the
spec's own verifier), the retry schedule, the events, and the target guard's address rules."""

from __future__ import annotations

import base64
import ipaddress
import json
import time

import pytest
import standardwebhooks

from runwire.adapters.network_targets import NetworkTargetGuard, refusal_reason
from runwire.core.models import RunRecord, RunRequest, RunStatus, RunWebhook
from runwire.core.webhooks import (
    STANDARD_RETRY_SCHEDULE,
    OutboxEvent,
    OutboxQueueLimits,
    RetrySchedule,
    WebhookEventType,
    event_body,
    new_secret,
    outbox_event,
    signed_headers,
    webhook_id,
)
from runwire.errors import WebhookTargetRefusedError
from runwire.settings import Settings

SECRET = new_secret(bytes(range(32)))


def run_record(status: RunStatus, *, last_seq: int = 0, webhook: str | None = None) -> RunRecord:
    return RunRecord(
        run_id="run_0123456789abcdef0123456789abcdef", org_id="acme", user_id="u1", agent_id="ag_chat",
        status=status, request=RunRequest(task="hi", conversation_id="c1",
                                          webhook=RunWebhook(url=webhook) if webhook else None),
        created_at=1_800_000_000.0, expires_at=1_800_000_300, last_seq=last_seq,
    )


# --- the signature ---------------------------------------------------------------------------------
def test_a_signed_event_verifies_with_the_standardwebhooks_package() -> None:
    body = json.dumps({"type": "run.succeeded", "timestamp": "2026-11-28T15:00:00Z", "data": {"runId": "run_1"}})
    timestamp = int(time.time())
    headers = signed_headers(SECRET, "run_1_succeeded", timestamp, body)

    payload = standardwebhooks.Webhook(SECRET).verify(body, headers)

    assert payload["data"] == {"runId": "run_1"}
    assert headers["webhook-signature"].startswith("v1,") and headers["content-type"] == "application/json"


@pytest.mark.parametrize("tamper", ["body", "id", "secret"])
def test_a_changed_body_id_or_secret_fails_verification(tamper: str) -> None:
    body, timestamp = '{"type":"run.failed"}', int(time.time())
    headers = signed_headers(SECRET, "msg_1", timestamp, body)
    secret = SECRET
    if tamper == "body":
        body = '{"type":"run.succeeded"}'
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    else:
        secret = new_secret(bytes(32))
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body, headers)


def test_a_new_secret_is_whsec_and_the_base64_of_its_random_bytes() -> None:
    secret = new_secret(b"\x01" * 32)
    assert secret.startswith("whsec_")
    assert base64.b64decode(secret.removeprefix("whsec_")) == b"\x01" * 32


# --- the retry schedule ----------------------------------------------------------------------------
def test_the_default_schedule_is_the_specs_eight_attempts() -> None:
    schedule = RetrySchedule()
    assert schedule.delays == STANDARD_RETRY_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert schedule.attempts == 8
    assert [schedule.delay_after(n) for n in range(1, 9)] == [5, 300, 1800, 7200, 18000, 36000, 36000, None]


def test_a_schedule_parses_from_its_setting_and_refuses_delays_sqs_cannot_hide_for() -> None:
    assert RetrySchedule.parse("0, 1,2").delays == (0, 1, 2)
    for text in ("", "0,-1", "0,43201"):
        with pytest.raises(ValueError):
            RetrySchedule.parse(text)


def test_a_schedule_whose_first_delay_is_not_zero_is_refused_as_the_first_attempt_is_immediate() -> None:
    # A delivery's first attempt is made as soon as it is fanned out: a first delay would be ignored.
    with pytest.raises(ValueError, match="starts with 0"):
        RetrySchedule.parse("60,5,300")


@pytest.mark.parametrize("text, reason", [
    ("0" + ",1" * 10, "11 attempts.*at most 10 times"),  # the 11th would never be handed out
    ("0,43200,43200,43200,43200,43200,43200,43200,43200", "keeps a message 345600 s"),  # 4 days and a bit
])
def test_settings_refuse_a_schedule_the_webhook_queue_cannot_honour(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Settings.from_environ({"WEBHOOK_RETRY_SCHEDULE_SECONDS": text})


def test_settings_take_a_schedule_that_fits_the_queue() -> None:
    assert Settings.from_environ({"WEBHOOK_RETRY_SCHEDULE_SECONDS": "0" + ",1" * 9}).webhook_retry_schedule.attempts == 10
    assert OutboxQueueLimits().refusal(RetrySchedule()) is None


# --- the event ---------------------------------------------------------------------------------------
def test_the_webhook_id_is_the_same_for_the_same_transition_and_differs_per_wait() -> None:
    assert webhook_id(run_record(RunStatus.SUCCEEDED)) == webhook_id(run_record(RunStatus.SUCCEEDED))
    assert webhook_id(run_record(RunStatus.SUCCEEDED)) != webhook_id(run_record(RunStatus.CANCELLED))
    first, second = (webhook_id(run_record(RunStatus.REQUIRES_ACTION, last_seq=seq)) for seq in (4, 9))
    assert first != second


def test_statuses_that_make_no_event() -> None:
    assert outbox_event(run_record(RunStatus.RUNNING), 0.0) is None
    assert outbox_event(run_record(RunStatus.QUEUED), 0.0) is None


def test_the_body_is_thin_type_timestamp_and_data_naming_the_run() -> None:
    event = outbox_event(run_record(RunStatus.EXPIRED, webhook="https://hooks.example.com/x"), 1_800_000_000.5)
    assert isinstance(event, OutboxEvent)
    assert event.type is WebhookEventType.RUN_EXPIRED and event.run_webhook_url == "https://hooks.example.com/x"
    assert json.loads(event_body(event)) == {
        "type": "run.expired",
        "timestamp": "2027-01-15T08:00:00.500000Z",
        "data": {"runId": "run_0123456789abcdef0123456789abcdef", "status": "expired", "orgId": "acme",
                 "conversationId": "c1"},
    }


# --- targets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "255.255.255.255", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def resolver(table: dict[str, list[str]]):
    return lambda host, port: table.get(host, [])


@pytest.mark.parametrize("url, reason", [
    ("http://hooks.example.com/x", "must be https"),
    ("https://127.0.0.1/x", "loopback"),
    ("https://[::ffff:169.254.169.254]/x", "link-local"),
    ("https://internal.example.com/x", "private"),
    ("https://mixed.example.com/x", "private"),
    ("https://nowhere.example.com/x", "does not resolve"),
    ("https://user:pw@hooks.example.com/x", "credentials"),
    ("ftp://hooks.example.com/x", "must be https"),
    ("https:///x", "no host"),
    ("https://hooks.example.com/a b", "printable ASCII"),
    ("https://hooks.example.com/a\r\nX-Injected: 1", "printable ASCII"),
    ("https://hööks.example.com/", "printable ASCII"),
    ("https://hooks.example.com:99999/", "not a valid URL"),
])
def test_the_guard_refuses_what_is_not_a_public_https_target(url: str, reason: str) -> None:
    guard = NetworkTargetGuard(allow_private=False, resolve=resolver({
        "hooks.example.com": ["93.184.216.34"], "internal.example.com": ["10.0.0.7"],
        "mixed.example.com": ["93.184.216.34", "192.168.0.1"],
    }))
    with pytest.raises(WebhookTargetRefusedError, match=reason):
        guard.check(url)


def test_the_guard_pins_every_address_it_checked_in_the_resolvers_order() -> None:
    guard = NetworkTargetGuard(allow_private=False, resolve=resolver({
        "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]}))
    pinned = guard.pin("https://hooks.example.com:8443/x?y=1")
    assert (pinned.target.host, pinned.target.port) == ("hooks.example.com", 8443)
    assert pinned.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")


def test_allowing_private_targets_lets_http_and_loopback_through() -> None:
    guard = NetworkTargetGuard(allow_private=True, resolve=resolver({"localhost": ["127.0.0.1"]}))
    assert guard.pin("http://localhost:9000/hook").addresses == ("127.0.0.1",)
    guard.check("http://127.0.0.1:9000/hook")
