"""The API's service: start, read, poll and cancel runs on behalf of an authenticated caller.

Every lookup is keyed by the caller's org, so another org's run is simply not found.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import (
    ConditionFailedError,
    ConversationBusyError,
    InvalidRequestError,
    QueueUnavailableError,
    RequestTooLargeError,
    RunConflictError,
    RunNotFoundError,
)
from .actions import expire_overdue
from .agents import AgentCatalog, AgentDefinition
from .ending import end_stopped_run
from .metrics import NullMetrics, RunMetrics
from .models import (
    IDENTIFIER_PATTERN,
    Caller,
    ConversationMessage,
    RunMessage,
    RunRecord,
    RunRequest,
    RunStatus,
    StoredChunk,
    TextChunk,
)
from .ports import Clock, ConversationStore, RunQueue, RunStore
from .runs import holds_conversation, run_holding_conversation

log = logging.getLogger("runwire.api")

MAX_REQUEST_BYTES = 300_000
"""A run's request is stored in its DynamoDB item (400 KB at most, with the run's other fields)."""
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


@dataclass(frozen=True)
class RunServicePolicy:
    retention_seconds: int = 300
    """How long a run and its chunks can be read after creation (seed 000: five minutes)."""
    first_poll_seconds: float = 0.05
    max_poll_seconds: float = 0.5
    """Waiting (sync runs, long polls) re-reads the store with backoff between these bounds."""
    queued_run_horizon_seconds: float = 0.0
    """How long after its own expiry a queued run may still be claimed, worked on and read (the
    worker's `claimed_expiry(0)`): a run queued behind another lives at least that long after it."""


CONVERSATION_RACE_ATTEMPTS = 5
"""Starts on one conversation that keep losing the race for its pointer give up after this many."""


@dataclass(frozen=True)
class RunSnapshot:
    run: RunRecord
    chunks: list[StoredChunk]

    @property
    def output_text(self) -> str:
        return "".join(c.chunk.text for c in self.chunks if isinstance(c.chunk, TextChunk))

    @property
    def last_seq(self) -> int:
        return self.chunks[-1].seq if self.chunks else 0


def check_tools(agent: AgentDefinition, request: RunRequest) -> None:
    """Client tools may not shadow the server's; approvals apply to the run's own server tools."""
    server = [name for name in agent.tools if request.available_tools is None or name in request.available_tools]
    client = [tool.name for tool in request.client_mcp_tools or []]
    clashes = sorted(set(client) & set(agent.tools))
    if clashes:
        raise InvalidRequestError(f"clientMcpTools: {', '.join(clashes)} is a server tool of this agent; rename it")
    for name in request.approval_required or []:
        if name in client:
            raise InvalidRequestError(
                f"approvalRequired: {name!r} is a client tool; the client runs it, so it needs no server approval"
            )
        if name not in server:
            known = ", ".join(server) or "none"
            raise InvalidRequestError(f"approvalRequired: this run has no server tool {name!r} (its tools: {known})")


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex


def new_conversation_id() -> str:
    """A fresh uuid4: what surfaces that create conversations hand out (seed 001 wants a uuid)."""
    return str(uuid.uuid4())


class RunService:
    def __init__(
        self,
        store: RunStore,
        queue: RunQueue,
        catalog: AgentCatalog,
        policy: RunServicePolicy,
        clock: Clock,
        new_id: Callable[[], str] = new_run_id,
        conversations: ConversationStore | None = None,
        sleep: Callable[[float], object] = time.sleep,
        metrics: RunMetrics | None = None,
        request_checks: Sequence[Callable[[Caller, RunRequest], None]] = (),
        run_preparations: Sequence[Callable[[Caller, RunRecord], None]] = (),
    ) -> None:
        self._metrics = metrics or NullMetrics()
        self._request_checks = tuple(request_checks)
        """More checks a request must pass before its run is stored (e.g. its webhook URL's target).
        They only read: a refused start writes nothing."""
        self._run_preparations = tuple(run_preparations)
        """What a run needs written once every check has passed, just before it is stored (e.g. its
        org's webhook signing secret)."""
        self._conversations = conversations
        self._sleep = sleep
        self._store = store
        self._queue = queue
        self._catalog = catalog
        self._policy = policy
        self._clock = clock
        self._new_id = new_id

    @property
    def catalog(self) -> AgentCatalog:
        return self._catalog

    def start(self, caller: Caller, request: RunRequest) -> RunRecord:
        agent = self._catalog.by_role(request.agent_role)
        check_tools(agent, request)
        for check in self._request_checks:
            check(caller, request)
        try:
            size = len(request.model_dump_json(by_alias=True, exclude_none=True).encode())
        except ValueError as exc:  # pydantic cannot serialize it (e.g. nested past its recursion limit)
            raise InvalidRequestError(f"the request cannot be stored: {exc}") from None
        if size > MAX_REQUEST_BYTES:
            raise RequestTooLargeError(
                f"the run request is {size:,} bytes; at most {MAX_REQUEST_BYTES:,} are accepted "
                "(send large files and images by reference: `files[].path`, `images[].url`)"
            )
        now = self._clock()
        run = RunRecord(
            run_id=self._new_id(),
            org_id=caller.org_id,
            user_id=caller.user_id,
            agent_id=agent.agent_id,
            status=RunStatus.QUEUED,
            request=request,
            created_at=now,
            expires_at=int(now) + self._policy.retention_seconds,
        )
        if request.conversation_id is not None and self._conversations is not None:
            run = self._start_on_conversation(caller, run, request.conversation_id)
        else:
            self._prepare(caller, run)
            self._store.create_run(run)
            self._enqueue(run)
        log.info("run queued for agent %s", agent.agent_id, extra={"run_id": run.run_id, "org_id": run.org_id})
        self._metrics.run_started(agent.agent_id)
        return run

    def _prepare(self, caller: Caller, run: RunRecord) -> None:
        """What must exist before the run is stored (e.g. its org's webhook secret): after every
        check, so a start that is refused leaves nothing behind."""
        for prepare in self._run_preparations:
            prepare(caller, run)

    def _enqueue(self, run: RunRecord) -> None:
        try:
            self._queue.enqueue(RunMessage(run_id=run.run_id, org_id=run.org_id, after_run_id=run.after_run_id))
        except QueueUnavailableError:
            # Nothing half-written: a run nobody will ever work on must not be readable.
            self._store.delete_run(run.org_id, run.run_id)
            raise

    def _start_on_conversation(self, caller: Caller, run: RunRecord, conversation_id: str) -> RunRecord:
        """Start `run` on its conversation, following its `multitaskStrategy` when a run there is
        still queued or running: `reject` (ConversationBusyError), `enqueue` (the new run waits
        behind it) or `interrupt` (the new run waits behind it, and it is cancelled, with any run it
        waits behind). A run already being cancelled is waited for whatever the strategy.

        Order matters. The run is stored before the conversation points at it, so a start that reads
        the pointer meanwhile never finds a run that is not there yet (which would read as free).
        The pointer then moves only if it still names what was read, so of two starts racing on one
        conversation one wins; the other deletes its run and looks again. The active run is
        cancelled last, once the new run is stored and queued: a start that fails cancels nothing."""
        assert self._conversations is not None
        conversations, org = self._conversations, caller.org_id
        strategy = run.request.multitask_strategy or "reject"
        prepared = False
        for _ in range(CONVERSATION_RACE_ATTEMPTS):
            seen_id = conversations.active_run(org, conversation_id)
            seen = self._store.get_run(org, seen_id) if seen_id else None
            holder = run_holding_conversation(seen, lambda run_id: self._store.get_run(org, run_id))
            if holder is not None and not holder.cancel_requested and strategy == "reject":
                raise ConversationBusyError(
                    f"conversation {conversation_id!r} has an active run ({holder.run_id}, {holder.status.value}); "
                    "wait for it to end, cancel it, or send 'multitaskStrategy': 'enqueue' or 'interrupt'",
                    details={"activeRunId": holder.run_id},
                )
            candidate = run if holder is None else self._queued_behind(run, holder)
            if not prepared:  # once, and only after the checks: a refused start leaves nothing behind
                self._prepare(caller, candidate)
                prepared = True
            self._store.create_run(candidate)
            try:
                # The pointer outlives a claim's extension of its run: it must not lapse mid-run.
                conversations.replace_active_run(org, conversation_id, candidate.run_id, expected=seen_id,
                                                 expires_at=candidate.expires_at + int(self._policy.queued_run_horizon_seconds))
            except ConditionFailedError:
                self._store.delete_run(org, candidate.run_id)
                continue  # another start on this conversation got there first: look again
            except Exception:
                self._store.delete_run(org, candidate.run_id)
                raise
            try:
                self._enqueue(candidate)
            except QueueUnavailableError:
                self._point_back(org, conversation_id, candidate, seen)
                raise
            if holder is not None and strategy == "interrupt" and not holder.cancel_requested:
                self._interrupt(caller, holder)
            return candidate
        raise ConversationBusyError(f"conversation {conversation_id!r} is being started on by other requests; try again")

    def _queued_behind(self, run: RunRecord, holder: RunRecord) -> RunRecord:
        return run.model_copy(update={
            "after_run_id": holder.run_id,
            # The conversation orders its turns by their runs' creation, to the millisecond: a run
            # queued behind another comes after it even when started in the same one.
            "created_at": max(run.created_at, holder.created_at + 0.001),
            # It may wait as long as the one ahead may take, and then run itself.
            "expires_at": max(run.expires_at, holder.expires_at + int(self._policy.queued_run_horizon_seconds)),
        })

    def _point_back(self, org_id: str, conversation_id: str, failed: RunRecord, previous: RunRecord | None) -> None:
        """A start that failed after taking the conversation gives it back to the run it found."""
        if previous is None or self._conversations is None:
            return  # a pointer to a run that is not stored reads as free, as it was
        try:
            self._conversations.replace_active_run(org_id, conversation_id, previous.run_id, expected=failed.run_id,
                                                   expires_at=previous.expires_at + int(self._policy.queued_run_horizon_seconds))
        except Exception:
            log.warning("could not point the conversation back at %s", previous.run_id, exc_info=True,
                        extra={"run_id": failed.run_id})

    def _interrupt(self, caller: Caller, run: RunRecord) -> None:
        """Cancel `run` and the runs it waits behind (an `enqueue` chain), keeping what they wrote."""
        seen: set[str] = set()
        current: RunRecord | None = run
        while current is not None and current.run_id not in seen and holds_conversation(current):
            seen.add(current.run_id)
            try:
                self.cancel(caller, current.run_id)
                log.info("run interrupted by a new run on its conversation", extra={"run_id": current.run_id})
            except (RunConflictError, RunNotFoundError):
                pass  # it ended meanwhile
            current = self._store.get_run(caller.org_id, current.after_run_id) if current.after_run_id else None

    def get(self, caller: Caller, run_id: str) -> RunRecord:
        if not _IDENTIFIER.fullmatch(run_id):
            raise RunNotFoundError(f"run {run_id[:80]!r} does not exist")  # no such id can: never ask the store
        run = self._store.get_run(caller.org_id, run_id)
        if run is None:
            raise RunNotFoundError(f"run {run_id!r} does not exist or has expired")
        return expire_overdue(self._store, run, self._clock(), retention_seconds=self._policy.retention_seconds)

    def snapshot(self, caller: Caller, run_id: str, *, after: int = 0) -> RunSnapshot:
        run = self.get(caller, run_id)
        # Consistent: once the run reads as finished, its last chunks must read too.
        return RunSnapshot(run, self._store.read_chunks(caller.org_id, run_id, after=after, consistent=True))

    def cancel(self, caller: Caller, run_id: str) -> RunRecord:
        run = self.get(caller, run_id)
        if run.status is RunStatus.CANCELLED:
            return run
        if run.status.is_terminal:
            raise RunConflictError(f"run {run_id!r} has already {run.status.value}; it cannot be cancelled")
        if run.status in (RunStatus.QUEUED, RunStatus.REQUIRES_ACTION):
            try:
                # No worker holds it: end it here, with its terminal sequence, so readers finish.
                ended = end_stopped_run(self._store, run, RunStatus.CANCELLED, None, self._clock(),
                                        retention_seconds=self._policy.retention_seconds)
                log.info("%s run cancelled", run.status.value, extra={"run_id": run_id})
                self._metrics.run_ended(RunStatus.CANCELLED.value)
                return ended
            except ConditionFailedError:
                pass  # a worker claimed it meanwhile: flag it like any running run
        try:
            flagged = self._store.request_cancel(run.org_id, run_id)
        except ConditionFailedError:
            current = self.get(caller, run_id)
            if current.status is RunStatus.CANCELLED:
                return current
            raise RunConflictError(f"run {run_id!r} has already {current.status.value}; it cannot be cancelled") from None
        log.info("cancel requested for running run", extra={"run_id": run_id})
        return flagged

    # --- waiting: the sync call and the long poll ------------------------------------------------
    def _poll(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = self._clock() + timeout
        interval = self._policy.first_poll_seconds
        while not check():
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._sleep(min(interval, remaining))
            interval = min(interval * 2, self._policy.max_poll_seconds)

    def wait_for_end(self, caller: Caller, run_id: str, *, timeout: float) -> RunRecord:
        """The run once it has finished or waits for its client, or as it is when `timeout` runs out."""
        latest = [self.get(caller, run_id)]

        def finished() -> bool:
            latest[0] = self.get(caller, run_id)
            return latest[0].status.is_terminal or latest[0].status is RunStatus.REQUIRES_ACTION

        self._poll(finished, timeout)
        return latest[0]

    def wait_for_events(self, caller: Caller, run_id: str, *, after: int, timeout: float) -> RunSnapshot:
        """The events after `after` as soon as there is one, or none when `timeout` runs out; at once
        for a finished run (nothing more will come)."""
        if self.get(caller, run_id).status.is_terminal:
            return self.snapshot(caller, run_id, after=after)
        found: list[StoredChunk] = []

        def arrived() -> bool:
            found[:] = self._store.read_chunks(caller.org_id, run_id, after=after)
            return bool(found)

        self._poll(arrived, timeout)
        return RunSnapshot(self.get(caller, run_id), list(found))

    # --- conversations ---------------------------------------------------------------------------
    def conversation_messages(self, caller: Caller, conversation_id: str, *, limit: int) -> list[ConversationMessage]:
        if self._conversations is None:
            return []
        return self._conversations.recent_messages(caller.org_id, conversation_id, limit=limit)

    def active_run(self, caller: Caller, conversation_id: str) -> RunRecord | None:
        """The conversation's latest run, if it is still readable."""
        if self._conversations is None or not _IDENTIFIER.fullmatch(conversation_id):
            return None
        run_id = self._conversations.active_run(caller.org_id, conversation_id)
        return self._store.get_run(caller.org_id, run_id) if run_id else None
