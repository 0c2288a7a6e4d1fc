"""DynamoDB adapter for the `RunStore` port: one table, one partition per run.

    pk = RUN#<org>#<run>   sk = RUN                 the run record (status, request, usage…)
    pk = RUN#<org>#<run>   sk = CHUNK#<seq:010d>    chunk <seq>, JSON in `body`
    pk = RUN#<org>#<run>   sk = FENCE               `leaseOwner`: who may write chunks (see `_held_check`)

Every item carries `expiresAt` (epoch seconds; the table's TTL attribute). DynamoDB deletes
expired items up to two days late, so every read checks `expiresAt` itself. Zero-padded
sequence numbers sort lexically, so "chunks after N" is one key-range Query.

A run waiting for its client (`requires_action`) also carries `waitPk = "WAITING"`, the partition
key of the sparse index `WaitingRuns` (sort key `actionExpiresAt`): the sweep finds the runs whose
action deadline has passed with one Query, and the attribute is removed when the run moves on.

Listing (`list_runs`): every run item carries `listPk = RUNS#<org>` and `listSk = <ms:013d>#<run>`,
the keys of the index `OrgListing` (newest first is one Query read backwards); a run in a
conversation also carries `conversationPk = <org>#<conversation>`, the partition key of
`ConversationRuns` (same sort key). Both project only the summary's attributes, so a lease renewal
or a chunk write never writes them: only what changes a summary (create, claim, wait, cancel, end).
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import TypeAdapter

from ..core.listing import listed_identifier, listing_sort_key
from ..core.models import (
    Chunk,
    EndChunk,
    Lease,
    ListPage,
    PendingAction,
    RunError,
    RunRecord,
    RunRequest,
    RunStatus,
    RunSummary,
    StoredChunk,
    Usage,
)
from ..core.ports import Clock
from ..core.runs import allowed_sources
from ..errors import ConditionFailedError, LeaseLostError, StorageError

T = TypeVar("T")

RUN_SORT_KEY = "RUN"
FENCE_SORT_KEY = "FENCE"
FENCE_TTL_SECONDS = 86_400
CHUNK_PREFIX = "CHUNK#"
SEQ_DIGITS = 10
MAX_SEQ = 10**SEQ_DIGITS - 1

EXTEND_PARALLELISM = 16
WAITING_INDEX = "WaitingRuns"
WAITING = "WAITING"
LEASED_INDEX = "LeasedRuns"
LEASE_SHARDS = 8
"""Running runs spread over this many LeasedRuns partitions: every lease renewal writes the index,
and one index partition takes about 1,000 writes a second."""

# Conditions, built from named pieces (after Powertools' idempotency persistence layer).
ITEM_NOT_EXISTS = "attribute_not_exists(pk)"
RUN_IS_LIVE = "attribute_exists(pk) AND expiresAt > :now"
HELD_BY_OWNER = "#status = :running AND leaseOwner = :owner"
LEASE_LAPSED = "#status = :running AND leaseExpiresAt < :now"

_ACTIONS = TypeAdapter(list[PendingAction])


def _actions_json(actions: list[PendingAction]) -> str:
    return _ACTIONS.dump_json(actions, by_alias=True, exclude_none=True).decode()


def _waiting_index_update(target: RunStatus) -> tuple[str, str]:
    """(SET piece, REMOVE piece): only a waiting run is in the WaitingRuns index."""
    if target is RunStatus.REQUIRES_ACTION:
        return "waitPk = :waiting", ""
    return "", "waitPk"

# Run attributes that `transition(changes=...)` may set, and their DynamoDB names.
_CHANGE_ATTRIBUTES = {
    "expires_at": "expiresAt",
    "started_at": "startedAt",
    "finished_at": "finishedAt",
    "lease_expires_at": "leaseExpiresAt",
    "action_expires_at": "actionExpiresAt",
}


def _lease_values(lease: Lease, now: float) -> dict[str, Any]:
    return {
        ":owner": {"S": lease.owner}, ":until": _number(lease.expires_at), ":now": _number(now),
        ":running": {"S": RunStatus.RUNNING.value},
    }


CONFLICT_ATTEMPTS = 6
CONFLICT_BACKOFF_SECONDS = 0.01


def _is_conflict(error: ClientError) -> bool:
    """A write that met a transaction in progress on its item (or a transaction that met another
    write): DynamoDB refuses it at once, and botocore does not retry it."""
    code = error.response.get("Error", {}).get("Code", "")
    if code == "TransactionConflictException":
        return True
    reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
    return code == "TransactionCanceledException" and "TransactionConflict" in reasons \
        and "ConditionalCheckFailed" not in reasons


def patiently(call: Callable[[], T]) -> T:
    """`call()`, tried again a few times, after a short random pause, while it meets a transaction
    conflict: the run item is written by its worker's heartbeat, its ending's transaction and a
    cancel, and the fence by a take-over while a stale worker's chunk transaction checks it."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            return call()
        except ClientError as exc:
            if not _is_conflict(exc) or attempt == CONFLICT_ATTEMPTS - 1:
                raise
            time.sleep(CONFLICT_BACKOFF_SECONDS * 2**attempt * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


def lease_partition(run_id: str) -> str:
    return f"LEASED#{zlib.crc32(run_id.encode()) % LEASE_SHARDS}"


def _cancellation_reasons(error: BaseException | None) -> list[str | None]:
    if isinstance(error, ClientError):
        return [r.get("Code") for r in error.response.get("CancellationReasons", [])]
    return []


def run_key(org_id: str, run_id: str) -> str:
    return f"RUN#{org_id}#{run_id}"


def chunk_sort_key(seq: int) -> str:
    return f"{CHUNK_PREFIX}{seq:0{SEQ_DIGITS}d}"


@contextmanager
def map_storage_errors() -> Iterator[None]:
    """botocore errors → the runwire error tree, by error code (never by message text)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise ConditionFailedError("a conditional write found the item in another state") from exc
        if code == "TransactionCanceledException":
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise ConditionFailedError(f"a transactional write lost its condition ({reasons})") from exc
        raise StorageError(f"DynamoDB {code or 'error'}: the run store is unavailable") from exc
    except BotoCoreError as exc:  # no answer at all: connection refused, timed out, DNS
        raise StorageError(f"DynamoDB did not answer ({type(exc).__name__}): the run store is unavailable") from exc


def _number(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _encode_run(run: RunRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": run_key(run.org_id, run.run_id)},
        "sk": {"S": RUN_SORT_KEY},
        "runId": {"S": run.run_id},
        "orgId": {"S": run.org_id},
        "userId": {"S": run.user_id},
        "agentId": {"S": run.agent_id},
        "status": {"S": run.status.value},
        "request": {"S": run.request.model_dump_json(by_alias=True, exclude_none=True)},
        "createdAt": _number(run.created_at),
        "expiresAt": _number(run.expires_at),
        "cancelRequested": {"BOOL": run.cancel_requested},
    }
    for attribute, name in _CHANGE_ATTRIBUTES.items():
        value = getattr(run, attribute)
        if value is not None and attribute != "expires_at":
            item[name] = _number(value)
    if run.usage is not None:
        item["usage"] = {"S": run.usage.model_dump_json(by_alias=True)}
    if run.error is not None:
        item["error"] = {"S": run.error.model_dump_json(by_alias=True)}
    if run.actions is not None:
        item["actions"] = {"S": _actions_json(run.actions)}
    if run.action_expires_at is not None:
        item["actionExpiresAt"] = _number(run.action_expires_at)
    if run.last_seq:
        item["lastSeq"] = _number(run.last_seq)
    if run.lease_owner is not None:
        item["leaseOwner"] = {"S": run.lease_owner}
    if run.attempts:
        item["attempts"] = _number(run.attempts)
    if run.takeovers:
        item["takeovers"] = _number(run.takeovers)
    if run.live_usage is not None:
        item["liveUsage"] = {"S": run.live_usage.model_dump_json(by_alias=True)}
    if run.after_run_id is not None:
        item["afterRunId"] = {"S": run.after_run_id}
    item.update(_listing_attributes(run))
    return item


# --- listing: the OrgListing and ConversationRuns indexes ------------------------------------------
ORG_LISTING_INDEX = "OrgListing"
CONVERSATION_RUNS_INDEX = "ConversationRuns"
MAX_LISTING_READS = 5_000
"""Index items a listing request reads before it gives up filling a page (each is under 1 KB): the
batch that passes it ends the page early, with a cursor, so a rare status costs several requests,
not one that reads an org's whole index."""
MAX_LISTING_BATCH = 1_000


def runs_listing_partition(org_id: str) -> str:
    return f"RUNS#{org_id}"


def conversation_runs_partition(org_id: str, conversation_id: str) -> str:
    return f"{org_id}#{conversation_id}"


def _listing_attributes(run: RunRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "listPk": {"S": runs_listing_partition(run.org_id)},
        "listSk": {"S": listing_sort_key(run.created_at, run.run_id)},
    }
    conversation_id = run.request.conversation_id
    if conversation_id is not None:
        attributes["conversationPk"] = {"S": conversation_runs_partition(run.org_id, conversation_id)}
        attributes["conversationId"] = {"S": conversation_id}
    return attributes


def query_listing(
    client: Any, request: dict[str, Any], *, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` items of an index Query (its FilterExpression applied), and the `listSk` to
    resume after, None when no more match. DynamoDB applies a filter after its `Limit`, so this reads
    on until the page is full (one item more tells whether another page exists), or until
    MAX_LISTING_READS index items have been read: then the page ends early, with a cursor."""
    found: list[dict[str, Any]] = []
    read = 0
    batch = limit + 1
    with map_storage_errors():
        while True:
            call = {**request, "Limit": batch, **({"ExclusiveStartKey": start} if start else {})}
            response = client.query(**call)
            found.extend(response.get("Items", []))
            read += int(response.get("ScannedCount", 0))
            if len(found) > limit:
                return found[:limit], found[limit - 1]["listSk"]["S"]
            start = response.get("LastEvaluatedKey")
            if start is None:
                return found, None
            if read >= MAX_LISTING_READS:
                return found, str(start["listSk"]["S"])
            batch = min(batch * 4, MAX_LISTING_BATCH)


def _decode_summary(item: dict[str, Any]) -> RunSummary:
    def number(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    return RunSummary(
        run_id=item["runId"]["S"],
        agent_id=item["agentId"]["S"],
        status=RunStatus(item["status"]["S"]),
        conversation_id=item["conversationId"]["S"] if "conversationId" in item else None,
        created_at=float(item["createdAt"]["N"]),
        expires_at=int(item["expiresAt"]["N"]),
        started_at=number("startedAt"),
        finished_at=number("finishedAt"),
        cancel_requested=item.get("cancelRequested", {}).get("BOOL", False),
        usage=Usage.model_validate_json(item["usage"]["S"]) if "usage" in item else None,
        error=RunError.model_validate_json(item["error"]["S"]) if "error" in item else None,
    )


def _decode_run(item: dict[str, Any]) -> RunRecord:
    def number(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    return RunRecord(
        run_id=item["runId"]["S"],
        org_id=item["orgId"]["S"],
        user_id=item["userId"]["S"],
        agent_id=item["agentId"]["S"],
        status=RunStatus(item["status"]["S"]),
        request=RunRequest.model_validate_json(item["request"]["S"]),
        created_at=float(item["createdAt"]["N"]),
        expires_at=int(item["expiresAt"]["N"]),
        started_at=number("startedAt"),
        finished_at=number("finishedAt"),
        lease_expires_at=number("leaseExpiresAt"),
        cancel_requested=item.get("cancelRequested", {}).get("BOOL", False),
        usage=Usage.model_validate_json(item["usage"]["S"]) if "usage" in item else None,
        error=RunError.model_validate_json(item["error"]["S"]) if "error" in item else None,
        actions=_ACTIONS.validate_json(item["actions"]["S"]) if "actions" in item else None,
        action_expires_at=number("actionExpiresAt"),
        last_seq=int(item["lastSeq"]["N"]) if "lastSeq" in item else 0,
        lease_owner=item["leaseOwner"]["S"] if "leaseOwner" in item else None,
        attempts=int(item["attempts"]["N"]) if "attempts" in item else 0,
        takeovers=int(item["takeovers"]["N"]) if "takeovers" in item else 0,
        live_usage=Usage.model_validate_json(item["liveUsage"]["S"]) if "liveUsage" in item else None,
        after_run_id=item["afterRunId"]["S"] if "afterRunId" in item else None,
    )


def _chunk_item(org_id: str, run_id: str, seq: int, chunk: Chunk, expires_at: int, written_at: float) -> dict[str, Any]:
    return {
        "pk": {"S": run_key(org_id, run_id)},
        "sk": {"S": chunk_sort_key(seq)},
        "seq": {"N": str(seq)},
        "body": {"S": chunk.model_dump_json(by_alias=True)},
        "writtenAt": _number(written_at),
        "expiresAt": {"N": str(expires_at)},
    }


def _decode_chunk(item: dict[str, Any]) -> StoredChunk:
    return StoredChunk.model_validate(
        {"seq": int(item["seq"]["N"]), "chunk": json.loads(item["body"]["S"]), "writtenAt": float(item["writtenAt"]["N"])},
        strict=False,
    )


class DynamoDBRunStore:
    def __init__(self, client: Any, table_name: str, clock: Clock) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def create_run(self, run: RunRecord) -> None:
        try:
            with map_storage_errors():
                patiently(lambda: self._client.put_item(TableName=self._table, Item=_encode_run(run),
                                                        ConditionExpression=ITEM_NOT_EXISTS))
        except ConditionFailedError:
            # A PutItem has no idempotency token: retried after it committed (its answer was lost),
            # it finds itself. Run ids are random, so a run with this id and creation time is this one.
            stored = self.get_run(run.org_id, run.run_id)
            if stored is None or stored.created_at != run.created_at or stored.request != run.request:
                raise

    def delete_run(self, org_id: str, run_id: str) -> None:
        with map_storage_errors():
            self._client.delete_item(
                TableName=self._table, Key={"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": RUN_SORT_KEY}}
            )

    def get_run(self, org_id: str, run_id: str) -> RunRecord | None:
        with map_storage_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": RUN_SORT_KEY}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None or int(item["expiresAt"]["N"]) <= self._clock():
            return None
        return _decode_run(item)

    def transition(
        self, org_id: str, run_id: str, target: RunStatus, *, changes: dict[str, Any] | None = None
    ) -> RunRecord:
        sources = sorted(s.value for s in allowed_sources(target))
        values: dict[str, Any] = {":target": {"S": target.value}, ":now": _number(self._clock())}
        values.update({f":from{i}": {"S": s} for i, s in enumerate(sources)})
        assignments = ["#status = :target"]
        for attribute, value in (changes or {}).items():
            name = _CHANGE_ATTRIBUTES[attribute]
            assignments.append(f"{name} = :new_{name}")
            values[f":new_{name}"] = _number(value)
        in_list = ", ".join(f":from{i}" for i in range(len(sources)))
        waiting_set, waiting_remove = _waiting_index_update(target)
        if waiting_set:
            assignments.append(waiting_set)
            values[":waiting"] = {"S": WAITING}
        return self._update(
            org_id,
            run_id,
            update="SET " + ", ".join(assignments) + (f" REMOVE {waiting_remove}" if waiting_remove else ""),
            condition=f"{RUN_IS_LIVE} AND #status IN ({in_list})",
            values=values,
        )

    def request_cancel(self, org_id: str, run_id: str) -> RunRecord:
        return self._update(
            org_id,
            run_id,
            update="SET cancelRequested = :true",
            condition=f"{RUN_IS_LIVE} AND #status IN (:queued, :running)",
            values={
                ":true": {"BOOL": True},
                ":now": _number(self._clock()),
                ":queued": {"S": RunStatus.QUEUED.value},
                ":running": {"S": RunStatus.RUNNING.value},
            },
        )

    def claim(self, org_id: str, run_id: str, *, lease: Lease, now: float, expires_at: int) -> RunRecord:
        return self._hand_to(org_id, run_id, lease, update=self._run_update(
            org_id, run_id,
            update="SET #status = :running, startedAt = :now, leaseOwner = :owner, leaseExpiresAt = :until, "
                   "leasePk = :leasePk, expiresAt = :expiresAt, attempts = if_not_exists(attempts, :zero) + :one, "
                   "takeovers = :zero REMOVE waitPk, liveUsage",
            condition=f"{RUN_IS_LIVE} AND #status = :queued",
            values={**_lease_values(lease, now), ":queued": {"S": RunStatus.QUEUED.value},
                    ":leasePk": {"S": lease_partition(run_id)},
                    ":expiresAt": _number(expires_at), ":zero": _number(0), ":one": _number(1)},
        ))

    def take_over(self, org_id: str, run_id: str, *, lease: Lease, previous_owner: str | None, now: float) -> RunRecord:
        values = {**_lease_values(lease, now), ":zero": _number(0), ":one": _number(1)}
        if previous_owner is None:
            held_by_previous = "attribute_not_exists(leaseOwner)"
        else:
            held_by_previous = "leaseOwner = :previous"
            values[":previous"] = {"S": previous_owner}
        return self._hand_to(org_id, run_id, lease, update=self._run_update(
            org_id, run_id,
            update="SET leaseOwner = :owner, leaseExpiresAt = :until, "
                   "attempts = if_not_exists(attempts, :zero) + :one, takeovers = if_not_exists(takeovers, :zero) + :one",
            condition=f"{RUN_IS_LIVE} AND {LEASE_LAPSED} AND {held_by_previous}",
            values=values,
        ))

    def _hand_to(self, org_id: str, run_id: str, lease: Lease, *, update: dict[str, Any]) -> RunRecord:
        """Move the run to `lease` and its fence with it, in one transaction; the run as it is now."""
        fence = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "pk": {"S": run_key(org_id, run_id)}, "sk": {"S": FENCE_SORT_KEY},
                    "leaseOwner": {"S": lease.owner},
                    # Read by nothing but chunk writes' condition checks: it may outlive the run a little.
                    "expiresAt": _number(int(lease.expires_at + FENCE_TTL_SECONDS)),
                },
            }
        }
        self._transact([update, fence])
        run = self.get_run(org_id, run_id)
        if run is None:
            raise ConditionFailedError(f"run {run_id} vanished as it was claimed")
        return run

    def _run_update(self, org_id: str, run_id: str, *, update: str, condition: str, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": RUN_SORT_KEY}},
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    def renew_lease(self, org_id: str, run_id: str, *, lease: Lease, live_usage: Usage | None) -> tuple[RunStatus, bool]:
        update = "SET leaseExpiresAt = :until"
        values = _lease_values(lease, self._clock())
        if live_usage is not None:
            update += ", liveUsage = :usage"
            values[":usage"] = {"S": live_usage.model_dump_json(by_alias=True)}
        try:
            run = self._update(org_id, run_id, update=update, condition=f"{RUN_IS_LIVE} AND {HELD_BY_OWNER}", values=values)
        except ConditionFailedError as exc:
            raise LeaseLostError(f"run {run_id} is no longer held by {lease.owner}") from exc
        return run.status, run.cancel_requested

    def append_chunk(
        self, org_id: str, run_id: str, seq: int, chunk: Chunk, *, expires_at: int, owner: str | None = None
    ) -> StoredChunk:
        written_at = self._clock()
        item = _chunk_item(org_id, run_id, seq, chunk, expires_at, written_at)
        if owner is None:
            with map_storage_errors():
                patiently(lambda: self._client.put_item(TableName=self._table, Item=item,
                                                        ConditionExpression=ITEM_NOT_EXISTS))
        else:
            # Fenced: the put lands only while this worker's lease holds the run (2 WCU a chunk
            # instead of 1, the price of "a superseded worker writes nothing a reader sees").
            put = {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": ITEM_NOT_EXISTS}}
            self._transact([self._held_check(org_id, run_id, owner), put], fenced_item=0)
        return StoredChunk(seq=seq, chunk=chunk, written_at=written_at)

    def _fence_removal(self, org_id: str, run_id: str) -> dict[str, Any]:
        return {"Delete": {"TableName": self._table,
                           "Key": {"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": FENCE_SORT_KEY}}}}

    def _held_check(self, org_id: str, run_id: str, owner: str) -> dict[str, Any]:
        """The fence: a small item that names the run's holder (written with the run's lease, in the
        claim's transaction), so a chunk's condition check costs 2 WCU, not 2 per KB of the run's request."""
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": {"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": FENCE_SORT_KEY}},
                "ConditionExpression": "leaseOwner = :owner",
                "ExpressionAttributeValues": {":owner": {"S": owner}},
            }
        }

    def _transact(self, items: list[dict[str, Any]], *, fenced_item: int | None = None) -> None:
        """One TransactWriteItems (botocore fills its ClientRequestToken, so a retry of a committed
        transaction is answered as a success). If the item at `fenced_item` (the run item, holding
        its owner's lease) failed its condition, the worker lost the run: LeaseLostError."""
        try:
            with map_storage_errors():
                patiently(lambda: self._client.transact_write_items(TransactItems=items))
        except ConditionFailedError as exc:
            reasons = _cancellation_reasons(exc.__cause__)
            if fenced_item is not None and len(reasons) > fenced_item and reasons[fenced_item] == "ConditionalCheckFailed":
                raise LeaseLostError("the run is held by another worker now") from exc
            raise

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
        if expected not in allowed_sources(target):
            raise ConditionFailedError(f"a run cannot go from {expected.value} to {target.value}")
        run = self.get_run(org_id, run_id)
        if run is None:
            raise ConditionFailedError(f"run {run_id} does not exist")
        expires_at = run.expires_at if retain_until is None else retain_until
        assignments = ["#status = :target", "finishedAt = :finishedAt", "expiresAt = :expiresAt"]
        values: dict[str, Any] = {
            ":target": {"S": target.value},
            ":expected": {"S": expected.value},
            ":finishedAt": _number(finished_at),
            ":expiresAt": _number(expires_at),
            ":now": _number(self._clock()),
        }
        if usage is not None:
            assignments.append("#usage = :usage")
            values[":usage"] = {"S": usage.model_dump_json(by_alias=True)}
        if error is not None:
            assignments.append("#error = :error")
            values[":error"] = {"S": error.model_dump_json(by_alias=True)}
        names = {"#status": "status"}
        if usage is not None:
            names["#usage"] = "usage"
        if error is not None:
            names["#error"] = "error"
        condition = f"{RUN_IS_LIVE} AND #status = :expected"
        if owner is not None:
            condition += " AND leaseOwner = :owner"
            values[":owner"] = {"S": owner}
        written = [*preceding, EndChunk(status=target)]
        puts = self._chunk_puts(org_id, run_id, end_seq, written, expires_at, finished_at)
        update = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": RUN_SORT_KEY}},
                "UpdateExpression": "SET " + ", ".join(assignments) + " REMOVE waitPk, actionExpiresAt, liveUsage, leasePk",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        # A holder's end takes its fence with it, so none of its writes can land after. A run that no
        # worker holds (queued, or waiting: its suspend took the fence) has none to take.
        fence = [self._fence_removal(org_id, run_id)] if owner is not None else []
        self._transact([*puts, update, *fence], fenced_item=len(puts) if owner is not None else None)
        return run.model_copy(update={"status": target, "finished_at": finished_at,
                                      "usage": usage if usage is not None else run.usage, "error": error,
                                      "action_expires_at": None, "expires_at": expires_at})

    def _chunk_puts(
        self, org_id: str, run_id: str, first_seq: int, chunks: Sequence[Chunk], expires_at: int, written_at: float
    ) -> list[dict[str, Any]]:
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _chunk_item(org_id, run_id, first_seq + offset, chunk, expires_at, written_at),
                    "ConditionExpression": ITEM_NOT_EXISTS,
                }
            }
            for offset, chunk in enumerate(chunks)
        ]

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
        now = self._clock()
        assignments = [
            "#status = :waitingStatus", "actions = :actions", "actionExpiresAt = :actionExpiresAt",
            "expiresAt = :expiresAt", "lastSeq = :lastSeq", "waitPk = :waiting",
        ]
        values: dict[str, Any] = {
            ":waitingStatus": {"S": RunStatus.REQUIRES_ACTION.value},
            ":running": {"S": RunStatus.RUNNING.value},
            ":actions": {"S": _actions_json(actions)},
            ":actionExpiresAt": _number(action_expires_at),
            ":expiresAt": _number(expires_at),
            ":lastSeq": _number(first_seq + len(chunks) - 1),
            ":waiting": {"S": WAITING},
            ":now": _number(now),
        }
        names = {"#status": "status"}
        if usage is not None:
            assignments.append("#usage = :usage")
            values[":usage"] = {"S": usage.model_dump_json(by_alias=True)}
            names["#usage"] = "usage"
        update = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": RUN_SORT_KEY}},
                "UpdateExpression": "SET " + ", ".join(assignments) + " REMOVE leasePk",
                # A cancel that landed while the worker was on its way to suspend wins.
                "ConditionExpression": f"{RUN_IS_LIVE} AND #status = :running AND cancelRequested <> :true"
                + (" AND leaseOwner = :owner" if owner is not None else ""),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**values, ":true": {"BOOL": True},
                                              **({":owner": {"S": owner}} if owner is not None else {})},
            }
        }
        puts = self._chunk_puts(org_id, run_id, first_seq, chunks, expires_at, now)
        self._transact([*puts, update, self._fence_removal(org_id, run_id)])
        run = self.get_run(org_id, run_id)
        if run is None:
            raise ConditionFailedError(f"run {run_id} vanished after it was suspended")
        return run

    def record_answers(self, run: RunRecord, actions: list[PendingAction], *, requeue: bool) -> RunRecord:
        values: dict[str, Any] = {
            ":now": _number(self._clock()),
            ":waitingStatus": {"S": RunStatus.REQUIRES_ACTION.value},
            ":new": {"S": _actions_json(actions)},
            ":old": {"S": _actions_json(run.actions or [])},
        }
        update = "SET actions = :new"
        if requeue:
            update += ", #status = :queued REMOVE waitPk, actionExpiresAt"
            values[":queued"] = {"S": RunStatus.QUEUED.value}
        return self._update(
            run.org_id, run.run_id, update=update,
            condition=f"{RUN_IS_LIVE} AND #status = :waitingStatus AND actions = :old", values=values,
        )

    def cancel_state(self, org_id: str, run_id: str) -> tuple[RunStatus, bool] | None:
        with map_storage_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": RUN_SORT_KEY}},
                ConsistentRead=True,
                ProjectionExpression="#status, cancelRequested, expiresAt",
                ExpressionAttributeNames={"#status": "status"},
            )
        item = response.get("Item")
        if item is None or int(item["expiresAt"]["N"]) <= self._clock():
            return None
        return RunStatus(item["status"]["S"]), item.get("cancelRequested", {}).get("BOOL", False)

    def extend_chunks(self, org_id: str, run_id: str, *, through_seq: int, expires_at: int) -> None:
        def extend(seq: int) -> None:
            try:
                with map_storage_errors():
                    self._client.update_item(
                        TableName=self._table,
                        Key={"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": chunk_sort_key(seq)}},
                        UpdateExpression="SET expiresAt = :expiresAt",
                        ConditionExpression="attribute_exists(pk) AND expiresAt < :expiresAt",
                        ExpressionAttributeValues={":expiresAt": _number(expires_at)},
                    )
            except ConditionFailedError:
                pass  # kept that long already (or not written: nothing to keep)

        # One UpdateItem a chunk (DynamoDB has no batch update), EXTEND_PARALLELISM at a time: a
        # long stretch of work before a wait has hundreds of chunks.
        with ThreadPoolExecutor(max_workers=EXTEND_PARALLELISM) as pool:
            list(pool.map(extend, range(1, through_seq + 1)))

    def overdue_waiting_runs(self, *, now: float, limit: int, since: float = 0.0) -> list[tuple[str, str]]:
        with map_storage_errors():
            response = self._client.query(
                TableName=self._table,
                IndexName=WAITING_INDEX,
                KeyConditionExpression="waitPk = :waiting AND actionExpiresAt BETWEEN :since AND :now",
                ExpressionAttributeValues={":waiting": {"S": WAITING}, ":since": _number(since), ":now": _number(now)},
                Limit=limit,
            )
        # The index projects only keys: the org and run come from the run's key, RUN#<org>#<run>.
        keys = [item["pk"]["S"].split("#", 2) for item in response.get("Items", [])]
        return [(org_id, run_id) for _, org_id, run_id in keys]

    def lapsed_leases(self, *, before: float, since: float, limit: int) -> list[tuple[str, str]]:
        found: list[tuple[float, str, str]] = []
        with map_storage_errors():
            for shard in range(LEASE_SHARDS):
                response = self._client.query(
                    TableName=self._table,
                    IndexName=LEASED_INDEX,
                    KeyConditionExpression="leasePk = :shard AND leaseExpiresAt BETWEEN :since AND :before",
                    ExpressionAttributeValues={":shard": {"S": f"LEASED#{shard}"}, ":since": _number(since),
                                               ":before": _number(before)},
                    Limit=limit,
                )
                for item in response.get("Items", []):
                    _, org_id, run_id = item["pk"]["S"].split("#", 2)
                    found.append((float(item["leaseExpiresAt"]["N"]), org_id, run_id))
        return [(org_id, run_id) for _, org_id, run_id in sorted(found)[:limit]]

    def list_runs(
        self, org_id: str, *, limit: int, after: str | None = None, status: RunStatus | None = None,
        conversation_id: str | None = None,
    ) -> ListPage[RunSummary]:
        if conversation_id is None:
            index, partition_name, partition = ORG_LISTING_INDEX, "listPk", runs_listing_partition(org_id)
        else:
            index, partition_name = CONVERSATION_RUNS_INDEX, "conversationPk"
            partition = conversation_runs_partition(org_id, conversation_id)
        # Expired runs are filtered out here, not after: a page stays full while TTL lags behind.
        conditions = ["expiresAt > :now"]
        values: dict[str, Any] = {":partition": {"S": partition}, ":now": _number(self._clock())}
        names: dict[str, str] = {}
        if status is not None:
            conditions.append("#status = :status")
            values[":status"] = {"S": status.value}
            names["#status"] = "status"
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{partition_name} = :partition",
            "FilterExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            **({"ExpressionAttributeNames": names} if names else {}),
        }
        start = None
        if after is not None:
            start = {partition_name: {"S": partition}, "listSk": {"S": after},
                     "pk": {"S": run_key(org_id, listed_identifier(after))}, "sk": {"S": RUN_SORT_KEY}}
        items, next_position = query_listing(self._client, request, limit=limit, start=start)
        return ListPage([_decode_summary(item) for item in items], next_position)

    def read_chunks(
        self, org_id: str, run_id: str, *, after: int, limit: int = 1000, consistent: bool = False
    ) -> list[StoredChunk]:
        now = self._clock()
        if after >= MAX_SEQ:
            return []  # DynamoDB refuses a BETWEEN whose bounds are reversed
        chunks: list[StoredChunk] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": run_key(org_id, run_id)},
                ":first": {"S": chunk_sort_key(after + 1)},
                ":last": {"S": chunk_sort_key(MAX_SEQ)},
            },
            "Limit": limit,
            "ConsistentRead": consistent,
        }
        expected_seq = after + 1
        with map_storage_errors():
            while len(chunks) < limit:
                response = self._client.query(**request)
                for item in response.get("Items", []):
                    if int(item["expiresAt"]["N"]) <= now:
                        return []
                    stored = _decode_chunk(item)
                    # Deliver only a contiguous run of seqs: an eventually consistent read that
                    # shows seq n+1 before n must not make a reader skip n.
                    if stored.seq != expected_seq:
                        return chunks
                    chunks.append(stored)
                    expected_seq += 1
                    if len(chunks) >= limit:
                        return chunks
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
                request["Limit"] = limit - len(chunks)
        return chunks

    def _update(self, org_id: str, run_id: str, *, update: str, condition: str, values: dict[str, Any]) -> RunRecord:
        with map_storage_errors():
            response = patiently(lambda: self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": run_key(org_id, run_id)}, "sk": {"S": RUN_SORT_KEY}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            ))
        return _decode_run(response["Attributes"])
