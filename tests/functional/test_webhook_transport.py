"""The webhook transport over real sockets: it connects to the address the guard checked, and checks
again at send time."""

from __future__ import annotations

import socket
import ssl
import threading
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


class TricklingReceiver:
    """A receiver that reads the request, then answers `200` one byte every `interval` seconds: each
    byte comes well within a socket timeout, the whole answer long after the attempt's deadline."""

    ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-padding: " + b"." * 40 + b"\r\n\r\n"

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()
        self.answered_in_full = False
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> TricklingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            request = b""
            while b"\r\n\r\n" not in request or not request.endswith(b"{}"):
                chunk = connection.recv(4096)
                if not chunk:
                    return
                request += chunk
            self.requests += 1
            try:
                for byte in self.ANSWER:
                    if self._stopped.wait(self._interval):
                        return
                    connection.sendall(bytes([byte]))
                self.answered_in_full = True
            except OSError:
                return  # the sender hung up: what a deadline does


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_attempts_deadline() -> None:
    # One byte every 0.3 s never trips a 1 s socket timeout; the answer's 80 bytes would take 24 s.
    guard = NetworkTargetGuard(allow_private=True)
    with TricklingReceiver(interval=0.3) as receiver:
        url = f"http://127.0.0.1:{receiver.port}/slow"
        with pytest.raises(WebhookDeliveryError, match="within 1 s"):
            HTTPWebhookTransport(guard, timeout_seconds=1).post(url, {}, "{}")
        assert receiver.requests == 1 and not receiver.answered_in_full


def test_a_name_that_does_not_resolve_within_the_deadline_is_a_failed_attempt(receiver: WebhookReceiver) -> None:
    # The resolver answers, but only long after the attempt's second: without a deadline on the
    # resolution the POST would go out then and be answered 204.
    released = threading.Event()

    def slow_resolver(host: str, port: int) -> list[str]:
        released.wait(10)
        return ["127.0.0.1"]

    guard = NetworkTargetGuard(allow_private=True, resolve=slow_resolver)
    try:
        with pytest.raises(WebhookDeliveryError, match="did not resolve within"):
            HTTPWebhookTransport(guard, timeout_seconds=1).post(f"http://slow-dns.test:{receiver.port}/x", {}, "{}")
    finally:
        released.set()
    assert receiver.received == []


def test_each_checked_address_is_tried_in_turn_until_one_connects(receiver: WebhookReceiver) -> None:
    # 127.0.0.2 is loopback too, but nothing listens there on this port: the connection is refused.
    guard = NetworkTargetGuard(allow_private=True, resolve=lambda host, port: ["127.0.0.2", "127.0.0.1"])
    status = HTTPWebhookTransport(guard, timeout_seconds=5).post(f"http://two.test:{receiver.port}/both", {}, "{}")
    assert status == 204
    assert len(receiver.at("/both")) == 1  # sent once, to the address that answered


def test_when_no_checked_address_connects_the_failure_names_each() -> None:
    with WebhookReceiver() as closed:
        port = closed.port
    guard = NetworkTargetGuard(allow_private=True, resolve=lambda host, port: ["127.0.0.2", "127.0.0.1"])
    with pytest.raises(WebhookDeliveryError, match=r"127\.0\.0\.2: .*Refused.*; 127\.0\.0\.1: .*Refused"):
        HTTPWebhookTransport(guard, timeout_seconds=5).post(f"http://none.test:{port}/x", {}, "{}")
