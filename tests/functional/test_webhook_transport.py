"""The webhook transport over real sockets: it connects to the address the guard checked, and checks
again at send time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runwire.adapters.network_targets import NetworkTargetGuard
from runwire.adapters.webhook_http import HTTPWebhookTransport
from runwire.errors import WebhookDeliveryError
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def port_of(receiver: WebhookReceiver) -> int:
    return int(receiver.url("/").rsplit(":", 1)[1].strip("/"))


def test_the_request_goes_to_the_checked_address_with_the_urls_host_name(receiver: WebhookReceiver) -> None:
    # `hooks.test` resolves nowhere but in this guard: only a connection to the pinned address arrives.
    guard = NetworkTargetGuard(allow_private=True, resolve=lambda host, port: ["127.0.0.1"] if host == "hooks.test" else [])
    receiver.answer("/x?y=1", 202)
    status = HTTPWebhookTransport(guard, timeout_seconds=5).post(
        f"http://hooks.test:{port_of(receiver)}/x?y=1", {"webhook-id": "msg_1"}, '{"a":1}')

    assert status == 202
    (received,) = receiver.at("/x?y=1")
    assert received.body == '{"a":1}' and received.headers["webhook-id"] == "msg_1"
    assert received.headers["host"] == f"hooks.test:{port_of(receiver)}"


def test_a_name_that_now_resolves_to_a_private_address_is_refused_at_send_time(receiver: WebhookReceiver) -> None:
    # Registered while it resolved to a public address; now it rebinds to loopback.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    guard = NetworkTargetGuard(allow_private=False, resolve=lambda host, port: next(answers))
    guard.check("https://rebinding.test/x")
    with pytest.raises(WebhookDeliveryError, match="loopback"):
        HTTPWebhookTransport(guard, timeout_seconds=5).post("https://rebinding.test/x", {}, "{}")
    assert receiver.received == []


def test_no_listener_is_a_failed_attempt_not_a_crash() -> None:
    guard = NetworkTargetGuard(allow_private=True)
    with WebhookReceiver() as closed:
        url = closed.url("/gone")
    with pytest.raises(WebhookDeliveryError, match="no answer"):
        HTTPWebhookTransport(guard, timeout_seconds=2).post(url, {}, "{}")
