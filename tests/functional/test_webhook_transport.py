"""The webhook transport over real sockets: it connects to the address the guard checked, and checks
again at send time."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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
    return receiver.port


def self_signed(host: str, directory) -> tuple[str, str]:
    """A certificate for `host` and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.mark.parametrize("certified, reached", [("hooks.test", True), ("someone-else.test", False)])
def test_https_goes_to_the_pinned_address_and_verifies_the_certificate_for_the_urls_host(
    tmp_path, certified: str, reached: bool
) -> None:
    cert, key = self_signed(certified, tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=cert)
    guard = NetworkTargetGuard(allow_private=True, resolve=lambda host, port: ["127.0.0.1"])
    with WebhookReceiver(tls=server_tls) as receiver:
        transport = HTTPWebhookTransport(guard, timeout_seconds=5, tls=client_tls)
        url = f"https://hooks.test:{receiver.port}/secure"
        if reached:
            assert transport.post(url, {}, "{}") == 204
            assert len(receiver.at("/secure")) == 1
        else:  # a certificate for another name: the connection is refused before anything is sent
            with pytest.raises(WebhookDeliveryError, match="SSL"):
                transport.post(url, {}, "{}")
            assert receiver.received == []


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
