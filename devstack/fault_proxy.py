"""A reverse proxy between the local stack and the moto server that makes DynamoDB misbehave on purpose.

    DYNAMODB_FAULTS="throttle=0.10,error=0.01,commit_then_error=0.005" python -m devstack

Every request is forwarded to moto unchanged (DynamoDB, SQS, S3: the Host header too, which moto
routes S3's virtual-hosted buckets by). A DynamoDB request (`X-Amz-Target: DynamoDB_20120810.*`)
instead meets, at the configured rates, one of:

    throttle            400 ThrottlingException or ProvisionedThroughputExceededException (either at
                        random; botocore counts both as throttling: retries/standard.py,
                        `ThrottledRetryableChecker._THROTTLED_ERROR_CODES`); moto never sees it
    error               500 InternalFailure; moto never sees it
    commit_then_error   forwarded to moto, so the write commits, then answered 500 anyway: the
                        client retries a write that already happened
    delayed_ack         a write is forwarded to moto, so it commits, and answered ACK_DELAY_SECONDS
                        later: a worker killed meanwhile dies between a write and its acknowledgement
                        (reads are forwarded at once); `acks_awaited` counts those held right now
    conflict            a write meets a transaction in progress on its item, as DynamoDB answers it:
                        400 TransactionCanceledException with a `TransactionConflict` reason per item
                        for TransactWriteItems, 400 TransactionConflictException for a PutItem,
                        UpdateItem or DeleteItem of a run or its fence (the items transactions
                        touch; botocore retries neither); other requests are forwarded

`GET /__faults` (unsigned, so never an AWS call) answers the counters as JSON, for a harness.

Two deliberate divergences from moto (5.2), towards DynamoDB, so a fault suite's failures are
runwire's and not moto's:

- moto ignores TransactWriteItems' `ClientRequestToken`, so a transaction retried after
  `commit_then_error` would fail its own conditions. DynamoDB answers a repeat of a token that
  committed with success and changes nothing (for 10 minutes; the same token with other parameters
  is `IdempotentParameterMismatchException`:
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
  The proxy does the same, and counts each such answer in `transaction_replays`.
- moto's TransactWriteItems deep-copies each table it touches first and restores that copy if the
  transaction is cancelled: the copy races concurrent writes (moto answers 500, "dictionary changed
  size during iteration") and the restore erases whatever they wrote meanwhile. The proxy lets a
  transaction reach moto only while no other DynamoDB call is in flight there.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

log = logging.getLogger("devstack.faults")

FAULT_KINDS = ("throttle", "error", "commit_then_error", "conflict", "delayed_ack")
ACK_DELAY_SECONDS = 0.5
COUNTERS_PATH = "/__faults"
DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
SINGLE_ITEM_WRITES = frozenset(DYNAMODB_TARGET_PREFIX + op for op in ("PutItem", "UpdateItem", "DeleteItem"))
WRITES = SINGLE_ITEM_WRITES | {DYNAMODB_TARGET_PREFIX + op for op in ("TransactWriteItems", "BatchWriteItem")}
CONFLICT_MESSAGE = "Transaction is ongoing for the item"
TRANSACT_WRITE_ITEMS = DYNAMODB_TARGET_PREFIX + "TransactWriteItems"
THROTTLE_CODES = ("ThrottlingException", "ProvisionedThroughputExceededException")
IDEMPOTENCY_WINDOW_SECONDS = 600.0
UPSTREAM_TIMEOUT_SECONDS = 65.0
"""Longer than SQS's longest long poll (20 s) and any moto call."""

JSON_1_0 = "application/x-amz-json-1.0"
DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810#"
THROTTLE_MESSAGES = {  # DynamoDB's own wording
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was "
                                              "exceeded. Consider increasing your provisioning level with the "
                                              "UpdateTable API.",
}

# RFC 9110 §7.6.1: hop-by-hop headers belong to one connection, never forwarded. Content-Length is
# rewritten because bodies are forwarded whole (a chunked request arrives here decoded).
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "expect", "content-length",
})


@dataclass(frozen=True)
class FaultRates:
    throttle: float = 0.0
    error: float = 0.0
    commit_then_error: float = 0.0
    conflict: float = 0.0
    delayed_ack: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> FaultRates:
        """`throttle=0.10,error=0.01,commit_then_error=0.005` (kinds left out: 0)."""
        rates: dict[str, float] = {}
        for part in filter(None, (piece.strip() for piece in spec.split(","))):
            kind, _, value = part.partition("=")
            kind = kind.strip()
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown DynamoDB fault {kind!r} in {spec!r}: use {', '.join(FAULT_KINDS)}")
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(f"fault {kind} needs a rate between 0 and 1, got {value!r}") from None
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault {kind} needs a rate between 0 and 1, got {value!r}")
            rates[kind] = rate
        if sum(rates.values()) > 1.0:
            raise ValueError(f"fault rates add up to more than 1: {spec!r}")
        return cls(**rates)

    def draw(self, rng: random.Random) -> str | None:
        """One fault kind for one request, or None: forward it untouched."""
        roll = rng.random()
        for kind in FAULT_KINDS:
            rate: float = getattr(self, kind)
            if roll < rate:
                return kind
            roll -= rate
        return None


class TransactionIsolation:
    """A readers-writer lock: DynamoDB calls share moto, a TransactWriteItems has it alone."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sharing = 0
        self._alone = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._alone)
            self._sharing += 1
        try:
            yield
        finally:
            with self._changed:
                self._sharing -= 1
                self._changed.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._alone)
            self._alone = True  # from here no new call starts; wait for the ones in flight
            self._changed.wait_for(lambda: self._sharing == 0)
        try:
            yield
        finally:
            with self._changed:
                self._alone = False
                self._changed.notify_all()


class FaultState:
    """What every handler thread shares: the seeded draws, the counters and the committed
    transaction tokens, each behind one lock."""

    def __init__(self, rates: FaultRates, seed: int | None) -> None:
        self.rates = rates
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests = {"dynamodb": 0, "other": 0}
        self._faults = dict.fromkeys(FAULT_KINDS, 0)
        self._throttle_codes = dict.fromkeys(THROTTLE_CODES, 0)
        self._replays = 0
        self._transactions: dict[str, tuple[float, str, bytes]] = {}  # token → (committed at, body digest, response)
        self.acks_awaited = 0

    @contextmanager
    def holding_ack(self) -> Iterator[None]:
        """A committed write whose answer is held back."""
        with self._lock:
            self.acks_awaited += 1
        try:
            yield
        finally:
            with self._lock:
                self.acks_awaited -= 1

    def admit(self, target: str, body: bytes) -> tuple[str | None, str]:
        """Count a request and draw its fault (DynamoDB only; a fault that cannot happen to this
        request is none), and the throttle code if throttled."""
        with self._lock:
            if not target.startswith(DYNAMODB_TARGET_PREFIX):
                self._requests["other"] += 1
                return None, ""
            self._requests["dynamodb"] += 1
            kind = self.rates.draw(self._rng)
            if (kind == "delayed_ack" and target not in WRITES) or (kind == "conflict" and not can_conflict(target, body)):
                kind = None
            code = ""
            if kind is not None:
                self._faults[kind] += 1
            if kind == "throttle":
                code = self._rng.choice(THROTTLE_CODES)
                self._throttle_codes[code] += 1
            return kind, code

    def committed_transaction(self, token: str, digest: str) -> bytes | None:
        """The response to replay for a token that already committed: None if it has not (or has
        expired); `IdempotentParameterMismatch` if it committed with other parameters."""
        with self._lock:
            # Tokens are remembered in commit order, so the expired ones are the first ones.
            horizon = time.monotonic() - IDEMPOTENCY_WINDOW_SECONDS
            while self._transactions and next(iter(self._transactions.values()))[0] < horizon:
                del self._transactions[next(iter(self._transactions))]
            entry = self._transactions.get(token)
            if entry is None:
                return None
            if entry[1] != digest:
                raise IdempotentParameterMismatch(token)
            self._replays += 1
            return entry[2]

    def remember_transaction(self, token: str, digest: str, response: bytes) -> None:
        with self._lock:
            self._transactions[token] = (time.monotonic(), digest, response)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rates": asdict(self.rates),
                "seed": self.seed,
                "requests": dict(self._requests),
                "faults": dict(self._faults),
                "throttle_codes": dict(self._throttle_codes),
                "transaction_replays": self._replays,
                "acks_awaited": self.acks_awaited,
            }


class IdempotentParameterMismatch(Exception):
    """The token committed with other parameters."""


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: list[tuple[str, str]]


def dynamodb_error(status: int, type_name: str, message: str) -> Answer:
    """An error as DynamoDB's JSON protocol answers it (botocore takes the code after the `#`)."""
    body = json.dumps({"__type": type_name, "message": message}).encode()
    return Answer(status, body, [("Content-Type", JSON_1_0), ("x-amzn-RequestId", str(uuid.uuid4()))])


def throttled(code: str) -> Answer:
    return dynamodb_error(400, DYNAMODB_NAMESPACE + code, THROTTLE_MESSAGES[code])


TRANSACTED_SORT_KEYS = frozenset({"RUN", "FENCE"})
"""The items runwire's transactions write or check (besides a chunk, at its creation only): the only
ones a single write can find a transaction in progress on."""


def can_conflict(target: str, body: bytes) -> bool:
    if target == TRANSACT_WRITE_ITEMS:
        return True
    if target not in SINGLE_ITEM_WRITES:
        return False
    request = json.loads(body or b"{}")
    key = request.get("Key") or request.get("Item") or {}
    return key.get("sk", {}).get("S") in TRANSACTED_SORT_KEYS


def conflicted(target: str, body: bytes) -> Answer:
    """A write that meets a transaction in progress on its item (`can_conflict` said it may)."""
    if target == TRANSACT_WRITE_ITEMS:
        items = json.loads(body or b"{}").get("TransactItems", [])
        reasons = [{"Code": "TransactionConflict", "Message": CONFLICT_MESSAGE} for _ in items]
        payload = {"__type": DYNAMODB_NAMESPACE + "TransactionCanceledException", "CancellationReasons": reasons,
                   "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                              f"[{', '.join('TransactionConflict' for _ in items)}]"}
        return Answer(400, json.dumps(payload).encode(), [("Content-Type", JSON_1_0), ("x-amzn-RequestId", str(uuid.uuid4()))])
    return dynamodb_error(400, DYNAMODB_NAMESPACE + "TransactionConflictException", CONFLICT_MESSAGE)


def internal_failure(when: str) -> Answer:
    return dynamodb_error(500, "com.amazon.coral.service#InternalFailure",
                          f"The request processing has failed {when}. (injected by devstack.fault_proxy)")


class _FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for botocore's connection pool; every answer has a length
    server: _FaultServer

    def do_GET(self) -> None:
        if urlsplit(self.path).path == COUNTERS_PATH and "Authorization" not in self.headers:
            counters = json.dumps(self.server.state.snapshot()).encode()
            self._send(Answer(200, counters, [("Content-Type", "application/json")]))
        else:
            self._handle()

    def do_POST(self) -> None:
        self._handle()

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_POST

    def _handle(self) -> None:
        body = self._read_body()
        target = self.headers.get("X-Amz-Target", "")
        kind, throttle_code = self.server.state.admit(target, body)
        if kind == "throttle":
            self._send(throttled(throttle_code))
        elif kind == "error":
            self._send(internal_failure("because of an unknown error"))
        elif kind == "conflict":
            self._send(conflicted(target, body))
        elif kind == "delayed_ack":
            answer = self._commit(target, body)
            with self.server.state.holding_ack():
                time.sleep(ACK_DELAY_SECONDS)
            self._send(answer)
        else:
            answer = self._commit(target, body)
            self._send(internal_failure("after it committed") if kind == "commit_then_error" else answer)

    def _commit(self, target: str, body: bytes) -> Answer:
        """moto's answer; for a TransactWriteItems token that already committed, DynamoDB's."""
        if not target.startswith(DYNAMODB_TARGET_PREFIX):
            return self._forward(body)
        if target != TRANSACT_WRITE_ITEMS:
            with self.server.isolation.shared():
                return self._forward(body)
        token = _transaction_token(body)
        digest = hashlib.sha256(body).hexdigest()
        with self.server.isolation.alone():
            try:
                replay = self.server.state.committed_transaction(token, digest) if token else None
            except IdempotentParameterMismatch:
                return dynamodb_error(400, DYNAMODB_NAMESPACE + "IdempotentParameterMismatchException",
                                      "Request parameters do not match the parameters of a previous request with this "
                                      "token.")
            if replay is not None:
                return Answer(200, replay, [("Content-Type", JSON_1_0), ("x-amzn-RequestId", str(uuid.uuid4()))])
            answer = self._forward(body)
        if token and answer.status == 200:
            self.server.state.remember_transaction(token, digest, answer.body)
        return answer

    def _read_body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = []  # RFC 9112 §7.1: (size line, data, CRLF)*, a 0 size line, trailer lines, a blank line
        while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def _forward(self, body: bytes) -> Answer:
        upstream = self.server.upstream
        connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port,
                                                timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            # The client's Host header goes through as is: moto routes S3 virtual-hosted requests by it.
            headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.read(), response.getheaders())
        finally:
            connection.close()

    def _send(self, answer: Answer) -> None:
        self.log_request(answer.status)
        self.send_response_only(answer.status)  # moto's Date and Server headers, not a second pair
        for name, value in answer.headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if not any(name.lower() == "date" for name, _ in answer.headers):
            self.send_header("Date", self.date_time_string())
        if self.command == "HEAD":  # no body, but the length a GET would have had (S3's HeadObject)
            length = next((value for name, value in answer.headers if name.lower() == "content-length"), "0")
            self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def _transaction_token(body: bytes) -> str:
    try:
        return str(json.loads(body).get("ClientRequestToken") or "")
    except (ValueError, AttributeError):
        return ""


class _FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog (5 by default): a worker opens dozens of connections at once

    def __init__(self, address: tuple[str, int], upstream: str, state: FaultState) -> None:
        super().__init__(address, _FaultHandler)
        self.upstream = urlsplit(upstream)
        self.state = state
        self.isolation = TransactionIsolation()


class FaultProxy:
    """The proxy on `host:port` (0: a free port) in front of `upstream`, served from a daemon thread."""

    def __init__(self, upstream: str, rates: FaultRates, *, seed: int | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = FaultState(rates, seed)
        self._server = _FaultServer((host, port), upstream.rstrip("/"), self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def counters(self) -> dict[str, Any]:
        return self.state.snapshot()
