"""In-memory fakes of the storage and queue ports, for unit tests.

They enforce the same conditions as the DynamoDB adapter (tests/contract runs one suite against
both), so a test that passes against a fake means the same against DynamoDB.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ..core.listing import listed_identifier, listing_sort_key
from ..core.models import (
    Chunk,
    ConversationMessage,
    ConversationSummary,
    EndChunk,
    Lease,
    ListedT,
    ListPage,
    PendingAction,
    RunError,
    RunMessage,
    RunRecord,
    RunStatus,
    RunSummary,
    StoredChunk,
    Usage,
    listing_preview,
)
from ..core.ports import Clock
from ..core.runs import allowed_sources
from ..errors import ConditionFailedError, LeaseLostError, QueueUnavailableError, StorageError

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit, which the fake enforces too (roughly: on the item's JSON)."""


def _check_item_size(document: str) -> None:
    if len(document.encode()) > MAX_ITEM_BYTES:
        raise StorageError("DynamoDB ValidationException: Item size has exceeded the maximum allowed size")


class InMemoryRunStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._runs: dict[tuple[str, str], RunRecord] = {}
        self._chunks: dict[tuple[str, str], dict[int, StoredChunk]] = {}
        self._chunk_expiry: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()
        self.chunk_writes = 0

    def create_run(self, run: RunRecord) -> None:
        with self._lock:
            key = (run.org_id, run.run_id)
            if key in self._runs:
                stored = self._runs[key]
                if stored.created_at == run.created_at and stored.request == run.request:
                    return  # the same run again: a retry of a write that committed
                raise ConditionFailedError(f"run {run.run_id} exists already")
            _check_item_size(run.model_dump_json())
            self._runs[key] = run.model_copy(deep=True)
            self._chunks[key] = {}

    def delete_run(self, org_id: str, run_id: str) -> None:
        with self._lock:
            self._runs.pop((org_id, run_id), None)
            self._chunks.pop((org_id, run_id), None)

    def get_run(self, org_id: str, run_id: str) -> RunRecord | None:
        with self._lock:
            run = self._runs.get((org_id, run_id))
            if run is None or run.is_expired(self._clock()):
                return None
            return run.model_copy(deep=True)

    def transition(
        self, org_id: str, run_id: str, target: RunStatus, *, changes: dict[str, Any] | None = None
    ) -> RunRecord:
        with self._lock:
            run = self._live(org_id, run_id)
            if run.status not in allowed_sources(target):
                raise ConditionFailedError(f"run {run_id} is {run.status.value}; cannot become {target.value}")
            updated = run.model_copy(update={"status": target, **(changes or {})})
            self._runs[(org_id, run_id)] = updated
            return updated.model_copy(deep=True)

    def request_cancel(self, org_id: str, run_id: str) -> RunRecord:
        with self._lock:
            run = self._live(org_id, run_id)
            if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                raise ConditionFailedError(f"run {run_id} is {run.status.value}")
            updated = run.model_copy(update={"cancel_requested": True})
            self._runs[(org_id, run_id)] = updated
            return updated.model_copy(deep=True)

    def claim(self, org_id: str, run_id: str, *, lease: Lease, now: float, expires_at: int) -> RunRecord:
        with self._lock:
            run = self._live(org_id, run_id)
            if run.status is not RunStatus.QUEUED:
                raise ConditionFailedError(f"run {run_id} is {run.status.value}; it cannot be claimed")
            return self._update(run, status=RunStatus.RUNNING, started_at=now, lease_owner=lease.owner,
                                lease_expires_at=lease.expires_at, expires_at=expires_at, attempts=run.attempts + 1,
                                takeovers=0, live_usage=None)

    def take_over(self, org_id: str, run_id: str, *, lease: Lease, previous_owner: str | None, now: float) -> RunRecord:
        with self._lock:
            run = self._live(org_id, run_id)
            if not run.lease_lapsed(now) or run.lease_owner != previous_owner:
                raise ConditionFailedError(f"run {run_id} is not running on a lapsed lease of {previous_owner}")
            return self._update(run, lease_owner=lease.owner, lease_expires_at=lease.expires_at,
                                attempts=run.attempts + 1, takeovers=run.takeovers + 1)

    def renew_lease(self, org_id: str, run_id: str, *, lease: Lease, live_usage: Usage | None) -> tuple[RunStatus, bool]:
        with self._lock:
            try:
                run = self._held(org_id, run_id, lease.owner)
            except ConditionFailedError as exc:
                raise LeaseLostError(str(exc)) from exc
            changes: dict[str, Any] = {"lease_expires_at": lease.expires_at}
            if live_usage is not None:
                changes["live_usage"] = live_usage
            updated = self._update(run, **changes)
            return updated.status, updated.cancel_requested

    def append_chunk(
        self, org_id: str, run_id: str, seq: int, chunk: Chunk, *, expires_at: int, owner: str | None = None
    ) -> StoredChunk:
        with self._lock:
            if owner is not None:
                try:
                    self._held(org_id, run_id, owner)
                except ConditionFailedError as exc:
                    raise LeaseLostError(str(exc)) from exc
            chunks = self._chunks.setdefault((org_id, run_id), {})
            if seq in chunks:
                raise ConditionFailedError(f"chunk {seq} of run {run_id} is written already")
            return self._put_chunk(org_id, run_id, seq, chunk, expires_at, self._clock())

    def _held(self, org_id: str, run_id: str, owner: str) -> RunRecord:
        run = self._runs.get((org_id, run_id))
        if run is None or run.status is not RunStatus.RUNNING or run.lease_owner != owner:
            raise ConditionFailedError(f"run {run_id} is not held by {owner}")
        return run

    def _update(self, run: RunRecord, **changes: Any) -> RunRecord:
        updated = run.model_copy(update=changes)
        self._runs[(run.org_id, run.run_id)] = updated
        return updated.model_copy(deep=True)

    def _put_chunk(self, org_id: str, run_id: str, seq: int, chunk: Chunk, expires_at: int, at: float) -> StoredChunk:
        _check_item_size(chunk.model_dump_json())
        stored = StoredChunk(seq=seq, chunk=chunk, written_at=at)
        self._chunks.setdefault((org_id, run_id), {})[seq] = stored
        self._chunk_expiry[(org_id, run_id, seq)] = expires_at
        self.chunk_writes += 1
        return stored

    def _seqs_free(self, org_id: str, run_id: str, first_seq: int, count: int) -> bool:
        chunks = self._chunks.get((org_id, run_id), {})
        return all(seq not in chunks for seq in range(first_seq, first_seq + count))

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
        with self._lock:
            run = self._live(org_id, run_id)
            if (
                run.status is not RunStatus.RUNNING
                or (owner is not None and run.lease_owner != owner)
                or run.cancel_requested
                or not self._seqs_free(org_id, run_id, first_seq, len(chunks))
            ):
                raise ConditionFailedError(f"run {run_id} is {run.status.value}; it cannot wait")
            now = self._clock()
            for offset, chunk in enumerate(chunks):
                self._put_chunk(org_id, run_id, first_seq + offset, chunk, expires_at, now)
            updated = run.model_copy(update={
                "status": RunStatus.REQUIRES_ACTION, "actions": [a.model_copy(deep=True) for a in actions],
                "action_expires_at": action_expires_at, "usage": usage if usage is not None else run.usage,
                "expires_at": expires_at,
                "last_seq": first_seq + len(chunks) - 1,
            })
            self._runs[(org_id, run_id)] = updated
            return updated.model_copy(deep=True)

    def record_answers(self, run: RunRecord, actions: list[PendingAction], *, requeue: bool) -> RunRecord:
        with self._lock:
            current = self._live(run.org_id, run.run_id)
            if current.status is not RunStatus.REQUIRES_ACTION or current.actions != run.actions:
                raise ConditionFailedError(f"run {run.run_id} is no longer waiting for these actions")
            changes: dict[str, Any] = {"actions": [a.model_copy(deep=True) for a in actions]}
            if requeue:
                changes.update(status=RunStatus.QUEUED, action_expires_at=None)
            updated = current.model_copy(update=changes)
            self._runs[(run.org_id, run.run_id)] = updated
            return updated.model_copy(deep=True)

    def cancel_state(self, org_id: str, run_id: str) -> tuple[RunStatus, bool] | None:
        run = self.get_run(org_id, run_id)
        return None if run is None else (run.status, run.cancel_requested)

    def extend_chunks(self, org_id: str, run_id: str, *, through_seq: int, expires_at: int) -> None:
        with self._lock:
            for seq in self._chunks.get((org_id, run_id), {}):
                key = (org_id, run_id, seq)
                if seq <= through_seq and self._chunk_expiry.get(key, 0) < expires_at:
                    self._chunk_expiry[key] = expires_at

    def overdue_waiting_runs(self, *, now: float, limit: int, since: float = 0.0) -> list[tuple[str, str]]:
        with self._lock:
            overdue = sorted(
                (run.action_expires_at, key) for key, run in self._runs.items()
                if run.status is RunStatus.REQUIRES_ACTION and run.action_expires_at is not None
                and since <= run.action_expires_at <= now
            )
            return [key for _, key in overdue[:limit]]

    def lapsed_leases(self, *, before: float, since: float, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            lapsed = sorted(
                (run.lease_expires_at, key) for key, run in self._runs.items()
                if run.status is RunStatus.RUNNING and run.lease_owner is not None
                and run.lease_expires_at is not None and since <= run.lease_expires_at <= before
            )
            return [key for _, key in lapsed[:limit]]

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
        with self._lock:
            run = self._live(org_id, run_id)
            written = [*preceding, EndChunk(status=target)]
            expires_at = run.expires_at if retain_until is None else retain_until
            if owner is not None and (run.status is not expected or run.lease_owner != owner):
                raise LeaseLostError(f"run {run_id} is not held by {owner}")
            if (
                run.status is not expected
                or expected not in allowed_sources(target)
                or not self._seqs_free(org_id, run_id, end_seq, len(written))
            ):
                raise ConditionFailedError(f"run {run_id} is {run.status.value}; cannot end as {target.value}")
            for offset, chunk in enumerate(written):
                self._put_chunk(org_id, run_id, end_seq + offset, chunk, expires_at, finished_at)
            updated = run.model_copy(
                update={"status": target, "finished_at": finished_at,
                        "usage": usage if usage is not None else run.usage, "error": error, "expires_at": expires_at,
                        "action_expires_at": None, "live_usage": None}
            )
            self._runs[(org_id, run_id)] = updated
            return updated.model_copy(deep=True)

    def read_chunks(
        self, org_id: str, run_id: str, *, after: int, limit: int = 1000, consistent: bool = False
    ) -> list[StoredChunk]:
        with self._lock:
            run = self._runs.get((org_id, run_id))
            now = self._clock()
            if run is None or run.is_expired(now):
                return []
            chunks = self._chunks.get((org_id, run_id), {})
            out: list[StoredChunk] = []
            seq = after + 1
            while seq in chunks and len(out) < limit:
                if self._chunk_expiry.get((org_id, run_id, seq), 0) <= now:
                    return []  # as on DynamoDB: an expired chunk means the run is gone
                out.append(chunks[seq])
                seq += 1
            return out

    def list_runs(
        self, org_id: str, *, limit: int, after: str | None = None, status: RunStatus | None = None,
        conversation_id: str | None = None,
    ) -> ListPage[RunSummary]:
        with self._lock:
            now = self._clock()
            keyed = [
                (listing_sort_key(run.created_at, run.run_id), RunSummary.of(run))
                for (org, _), run in self._runs.items()
                if org == org_id and not run.is_expired(now) and status in (None, run.status)
                and conversation_id in (None, run.request.conversation_id)
            ]
        return _page_after(keyed, limit=limit, after=after)

    def _live(self, org_id: str, run_id: str) -> RunRecord:
        run = self._runs.get((org_id, run_id))
        if run is None or run.is_expired(self._clock()):
            raise ConditionFailedError(f"run {run_id} does not exist")
        return run


def _page_after(keyed: list[tuple[str, ListedT]], *, limit: int, after: str | None) -> ListPage[ListedT]:
    """Newest first, past `after`, `limit` at most: what the DynamoDB adapters read from OrgListing."""
    if after is not None:
        listed_identifier(after)  # InvalidCursorError, as DynamoDB's adapter raises
    ordered = sorted((entry for entry in keyed if after is None or entry[0] < after), key=lambda entry: entry[0],
                     reverse=True)
    page = ordered[:limit]
    return ListPage([item for _, item in page], page[-1][0] if len(ordered) > limit else None)


class InMemoryRunQueue:
    def __init__(self) -> None:
        self.messages: list[RunMessage] = []
        self.delays: list[int] = []
        """Each message's `delay_seconds`, in order (a test's worker decides when to deliver it)."""
        self.fail_next = False

    def enqueue(self, message: RunMessage, *, delay_seconds: int = 0) -> None:
        if self.fail_next:
            self.fail_next = False
            raise QueueUnavailableError("the run queue is unavailable")
        self.messages.append(message)
        self.delays.append(delay_seconds)


class InMemoryConversationStore:
    def __init__(self, clock: Clock, *, retention_seconds: int = 86_400) -> None:
        self._clock = clock
        self._retention = retention_seconds
        self._messages: dict[tuple[str, str], dict[tuple[int, str, int], tuple[ConversationMessage, float]]] = {}
        self._active: dict[tuple[str, str], tuple[str, int]] = {}
        self._summaries: dict[tuple[str, str], ConversationSummary] = {}
        self._lock = threading.Lock()

    def recent_messages(self, org_id: str, conversation_id: str, *, limit: int) -> list[ConversationMessage]:
        with self._lock:
            now = self._clock()
            stored = self._messages.get((org_id, conversation_id), {})
            live = [message for key, (message, expires) in sorted(stored.items()) if expires > now]
            return [m.model_copy() for m in live[-limit:]] if limit else []

    def append_turn(
        self, org_id: str, conversation_id: str, *, run_id: str, at: float, user: str, assistant: str
    ) -> None:
        with self._lock:
            expires = self._clock() + self._retention
            stored = self._messages.setdefault((org_id, conversation_id), {})
            for index, (role, content) in enumerate((("user", user), ("assistant", assistant))):
                message = ConversationMessage(role=role, content=content, run_id=run_id, created_at=at)  # type: ignore[arg-type]
                stored[(int(at * 1000), run_id, index)] = (message, expires)
            latest = self._summaries.get((org_id, conversation_id))
            if latest is None or latest.last_message_at <= at:
                self._summaries[(org_id, conversation_id)] = ConversationSummary(
                    conversation_id=conversation_id, last_message_at=at, last_message=listing_preview(assistant),
                    last_run_id=run_id, expires_at=int(expires),
                )

    def list_conversations(self, org_id: str, *, limit: int, after: str | None = None) -> ListPage[ConversationSummary]:
        with self._lock:
            now = self._clock()
            keyed = [
                (listing_sort_key(summary.last_message_at, conversation), summary.model_copy())
                for (org, conversation), summary in self._summaries.items()
                if org == org_id and summary.expires_at > now
            ]
        return _page_after(keyed, limit=limit, after=after)

    def delete_conversation(self, org_id: str, conversation_id: str, *, expected_active: str | None) -> bool:
        with self._lock:
            now = self._clock()
            key = (org_id, conversation_id)
            entry = self._active.get(key)
            current = entry[0] if entry is not None and entry[1] > now else None
            if current is not None and current != expected_active:
                raise ConditionFailedError(f"conversation {conversation_id} points at {current!r}, not {expected_active!r}")
            messages = self._messages.pop(key, {})
            active = self._active.pop(key, None)
            summary = self._summaries.pop(key, None)
            return (any(expires > now for _, expires in messages.values()) or (active is not None and active[1] > now)
                    or (summary is not None and summary.expires_at > now))

    def replace_active_run(
        self, org_id: str, conversation_id: str, run_id: str, *, expected: str | None, expires_at: int
    ) -> None:
        with self._lock:
            entry = self._active.get((org_id, conversation_id))
            live = entry if entry is not None and entry[1] > self._clock() else None
            current = live[0] if live else None
            if (expected is None and current is not None) or (expected is not None and (entry is None or entry[0] != expected)):
                raise ConditionFailedError(f"conversation {conversation_id} points at {current!r}, not {expected!r}")
            self._active[(org_id, conversation_id)] = (run_id, expires_at)

    def active_run(self, org_id: str, conversation_id: str) -> str | None:
        with self._lock:
            entry = self._active.get((org_id, conversation_id))
            if entry is None or entry[1] <= self._clock():
                return None
            return entry[0]
