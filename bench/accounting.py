"""From the counting server's request log to per-run ledgers: who asked what, for which run, when.

Every DynamoDB item of a run is keyed `RUN#<org>#<runId>`, so each DynamoDB request names its run
(PutItem's item, GetItem's and UpdateItem's key, Query's `:pk`, each TransactWriteItems item). SQS
requests name it through the message: SendMessage's body, ReceiveMessage's answer (and its
receipt handles), DeleteMessage's receipt handle. A ReceiveMessage that returns k messages counts
1/k for each of their runs; one that returns none is idle polling.

Capacity units follow DynamoDB's on-demand rules (Developer Guide, "DynamoDB read and write
operations"): a write is ceil(item size / 1 KB) units, twice that inside a transaction; a strongly
consistent read is ceil(size / 4 KB) units, an eventually consistent one half that, with a Query
rounding the total size of the items it returns. An empty read is counted as one 4 KB unit
(0.5 for an eventually consistent Query): an upper bound. Item sizes are computed from the items
as sent (attribute names + values), the way DynamoDB sizes them.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .counting import Request

WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
READ_OPERATIONS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
_RUN_KEY = re.compile(r"^RUN#[^#]+#(.+)$")
_CHUNK_SORT_KEY = re.compile(r"CHUNK#(\d{10})")
_STAMPED_TOKEN = re.compile(r"(\d+)@(\d+)")


def attribute_size(value: dict[str, Any]) -> int:
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return (len(data.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(data) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) for k, v in data.items())
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in data)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v)) for v in data)
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def run_of_key(key: dict[str, Any]) -> str | None:
    match = _RUN_KEY.match(key.get("pk", {}).get("S", ""))
    return match.group(1) if match else None


@dataclass
class DynamoCall:
    request: Request
    run_id: str | None
    sort_keys: list[str]
    capacity_units: float
    item_count: int = 1
    items_written: list[dict[str, Any]] = field(default_factory=list)
    seqs_returned: list[int] = field(default_factory=list)

    @property
    def operation(self) -> str:
        return self.request.operation

    @property
    def is_write(self) -> bool:
        return self.operation in WRITE_OPERATIONS

    @property
    def is_chunk_put(self) -> bool:
        """One chunk appended: a PutItem, or the worker's fenced append (a ConditionCheck of the
        run and the chunk's Put, in one TransactWriteItems) — not an ending's several chunks."""
        chunks = [k for k in self.sort_keys if k.startswith("CHUNK#")]
        if self.operation == "PutItem":
            return bool(chunks)
        return self.operation == "TransactWriteItems" and self.item_count == 2 and len(chunks) == 1


def _write_units(size: int, transactional: bool = False) -> float:
    return max(1, math.ceil(size / 1024)) * (2 if transactional else 1)


def _read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


class RunSizes:
    """The size of each run's record, from its PutItem: what an UpdateItem or GetItem of it costs."""

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}

    def note(self, run_id: str | None, item: dict[str, Any]) -> None:
        if run_id is not None and item.get("sk", {}).get("S") == "RUN":
            self._sizes[run_id] = item_size(item)

    def __getitem__(self, run_id: str | None) -> int:
        return self._sizes.get(run_id or "", 1024)


def parse_dynamodb(request: Request, sizes: RunSizes) -> DynamoCall:
    body = json.loads(request.body or "{}")
    op = request.operation
    if op == "PutItem":
        item = body["Item"]
        run_id = run_of_key(item)
        sizes.note(run_id, item)
        return DynamoCall(request, run_id, [item["sk"]["S"]], _write_units(item_size(item)), items_written=[item])
    if op in ("GetItem", "UpdateItem", "DeleteItem"):
        key = body["Key"]
        run_id = run_of_key(key)
        if op == "GetItem":
            units = _read_units(sizes[run_id], body.get("ConsistentRead", False))
        else:
            units = _write_units(sizes[run_id])
        return DynamoCall(request, run_id, [key["sk"]["S"]], units)
    if op == "TransactWriteItems":
        run_id, sort_keys, units, written = None, [], 0.0, []
        for entry in body["TransactItems"]:
            kind, spec = next(iter(entry.items()))
            key = spec.get("Item") or spec.get("Key") or {}
            run_id = run_id or run_of_key(key)
            sort_keys.append(key.get("sk", {}).get("S", ""))
            if kind == "Put":
                written.append(spec["Item"])
                units += _write_units(item_size(spec["Item"]), transactional=True)
            elif key.get("sk", {}).get("S") == "RUN":
                units += _write_units(sizes[run_of_key(key)], transactional=True)
            else:  # the fence: an item of a few attributes
                units += _write_units(item_size(key), transactional=True)
        return DynamoCall(request, run_id, sort_keys, units, item_count=len(body["TransactItems"]), items_written=written)
    if op == "BatchWriteItem":
        run_id, sort_keys, units, count = None, [], 0.0, 0
        for entries in body["RequestItems"].values():
            for entry in entries:
                item = entry.get("PutRequest", {}).get("Item") or entry.get("DeleteRequest", {}).get("Key") or {}
                run_id = run_id or run_of_key(item)
                sort_keys.append(item.get("sk", {}).get("S", ""))
                units += _write_units(item_size(item))
                count += 1
        return DynamoCall(request, run_id, sort_keys, units, item_count=count)
    if op == "Query":
        condition = body.get("KeyConditionExpression", "")
        name = re.search(r"\bpk\s*=\s*(:\w+)", condition)
        value = body.get("ExpressionAttributeValues", {}).get(name.group(1) if name else ":pk", {})
        match = _RUN_KEY.match(value.get("S", ""))
        answer = json.loads(request.response) if request.response else {}
        returned = answer.get("Items", [])
        units = _read_units(sum(item_size(i) for i in returned), body.get("ConsistentRead", False))
        seqs = [int(m) for i in returned for m in _CHUNK_SORT_KEY.findall(i.get("sk", {}).get("S", ""))]
        return DynamoCall(request, match.group(1) if match else None, [], units, seqs_returned=seqs)
    return DynamoCall(request, None, [], 0.0, item_count=0)


@dataclass
class ChunkWrite:
    seq: int
    decided: float
    """the chunk's `writtenAt`: when the worker decided to write it (after coalescing)"""
    arrived: float
    """when its PutItem reached the moto server"""
    done: float
    """when the moto server had answered it"""
    tokens: list[int]


@dataclass
class RunLedger:
    run_id: str
    dynamo: list[DynamoCall] = field(default_factory=list)
    sqs: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    sent_at: float | None = None
    """when the API's SendMessage had been answered"""
    received_by_worker: float | None = None
    deleted_by_worker: float | None = None

    def writes(self) -> list[DynamoCall]:
        return [c for c in self.dynamo if c.is_write]

    def reads(self) -> list[DynamoCall]:
        return [c for c in self.dynamo if c.operation in READ_OPERATIONS]

    def reader_queries(self, start: float = float("-inf"), end: float = float("inf")) -> list[DynamoCall]:
        """The stream's chunk queries (the gateway process) that started within [start, end)."""
        return [c for c in self.dynamo if c.operation == "Query" and c.request.app.endswith("gateway")
                and start <= c.request.started < end]

    def chunk_writes(self) -> dict[int, ChunkWrite]:
        """Each text/usage/error chunk's PutItem (the first that succeeded), by seq."""
        writes: dict[int, ChunkWrite] = {}
        for call in self.dynamo:
            if not call.is_chunk_put or call.request.status != 200:
                continue
            item = call.items_written[0]
            seq = int(item["seq"]["N"])
            if seq in writes:
                continue
            body = json.loads(item["body"]["S"])
            tokens = [int(n) for n, _ in _STAMPED_TOKEN.findall(body.get("text", ""))] if body.get("type") == "text" else []
            writes[seq] = ChunkWrite(seq, float(item["writtenAt"]["N"]), call.request.started, call.request.ended, tokens)
        return writes

    def first_read_of(self) -> dict[int, DynamoCall]:
        """For each seq, the first reader query whose answer carried it."""
        first: dict[int, DynamoCall] = {}
        for call in sorted(self.reader_queries(), key=lambda c: c.request.ended):
            for seq in call.seqs_returned:
                first.setdefault(seq, call)
        return first

    @property
    def worker_seconds(self) -> float | None:
        """The worker invocation: message received → message deleted (the handler returned)."""
        if self.received_by_worker is None or self.deleted_by_worker is None:
            return None
        return self.deleted_by_worker - self.received_by_worker


@dataclass
class Accounts:
    runs: dict[str, RunLedger]
    unattributed: list[DynamoCall]
    idle_receives: list[Request]
    """ReceiveMessage calls that returned no message"""
    all_requests: list[Request]

    def ledger(self, run_id: str | None) -> RunLedger | None:
        return self.runs.get(run_id or "")


def account(requests: Iterable[Request]) -> Accounts:
    runs: dict[str, RunLedger] = {}
    sizes = RunSizes()
    unattributed: list[DynamoCall] = []
    idle: list[Request] = []
    handles: dict[str, str] = {}
    ordered = sorted(requests, key=lambda r: r.started)

    def ledger(run_id: str) -> RunLedger:
        return runs.setdefault(run_id, RunLedger(run_id))

    for request in ordered:
        if request.app.startswith("bench"):
            continue  # the benchmark's own housekeeping (pruning finished runs), not the pipeline's
        if request.service == "dynamodb":
            call = parse_dynamodb(request, sizes)
            if call.run_id is None:
                unattributed.append(call)
            else:
                ledger(call.run_id).dynamo.append(call)
        elif request.service == "sqs":
            body = json.loads(request.body or "{}")
            if request.operation == "SendMessage":
                run_id = json.loads(body.get("MessageBody", "{}")).get("runId")
                if run_id:
                    ledger(run_id).sqs["SendMessage"] += 1
                    ledger(run_id).sent_at = ledger(run_id).sent_at or request.ended
            elif request.operation == "ReceiveMessage":
                messages = json.loads(request.response or "{}").get("Messages", [])
                if not messages:
                    idle.append(request)
                for message in messages:
                    run_id = json.loads(message["Body"]).get("runId")
                    if run_id:
                        handles[message["ReceiptHandle"]] = run_id
                        run = ledger(run_id)
                        run.sqs["ReceiveMessage"] += 1 / len(messages)
                        run.received_by_worker = run.received_by_worker or request.ended
            elif request.operation == "DeleteMessage":
                run_id = handles.get(body.get("ReceiptHandle", ""))
                if run_id:
                    run = ledger(run_id)
                    run.sqs["DeleteMessage"] += 1
                    run.deleted_by_worker = request.started
            elif request.operation == "ChangeMessageVisibility":  # the worker's lease keeps its message hidden
                run_id = handles.get(body.get("ReceiptHandle", ""))
                if run_id:
                    ledger(run_id).sqs["ChangeMessageVisibility"] += 1
    return Accounts(runs, unattributed, idle, ordered)
