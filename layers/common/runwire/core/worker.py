"""The worker's service: one delivery of a run's message — claim, rebuild, step, end.

A run is its log. The worker claims the run, rebuilds its transcript from the stored chunks (a
run that waited for its client carries on where it stopped), and runs two threads: the stepper
(`core/stepper.py`: model calls and server tools, producing events) and the writer
(`core/run_writer.py`: the only writer, coalescing, deadline, cancel). The ending
(`core/ending.py`) then stops the run one of two ways, each one atomic write:

    finish:   [error chunk] → [usage chunk, if a model was called] → end chunk, with the status
    suspend:  requires_action chunk, with the status and the pending actions (the worker returns)

Splitting producer and writer means a model that stalls cannot stall the flush window, the
cancel check or the deadline: the writer closes the model stream from its side.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from dataclasses import dataclass, field

from ..errors import ConditionFailedError, ModelError, StorageError, UnknownAgentError
from .agents import AgentCatalog, AgentDefinition
from .cancellation import CancellationToken
from .chunks import ChunkWriter, CoalescingPolicy
from .ending import Ending, usage_of
from .models import Chunk, HistoryMessage, RunError, RunMessage, RunRecord, RunStatus, ToolName
from .ports import Clock, ConversationStore, ModelProvider, RunStore, ToolSpec
from .run_writer import AgentDone, Finished, RunWriter, Suspend
from .stepper import RunTools, Stepper, model_request
from .tools import ToolRegistry
from .transcript import TranscriptBuilder, rebuild

log = logging.getLogger("runwire.worker")

LOG_LOST = RunError(code="run_log_unavailable", message="The run's stored log could not be read whole; it cannot be carried on.")

MEMORY_MESSAGE_CHARS = 100_000
"""What a conversation remembers of one message: enough for any prompt, and inside DynamoDB's item size."""


@dataclass
class WorkerPolicy:
    default_model: str = "claude-sonnet-4-5"
    max_run_seconds: float = 120.0
    """The limit on each stretch of work (from a claim to the run's end or its next wait)."""
    cancel_check_seconds: float = 0.5
    lease_grace_seconds: float = 30.0
    """A run whose worker has not finished it by deadline + grace is taken to be orphaned."""
    history_messages: int = 20
    """How many of a conversation's latest messages a run sees (seed 000: the last 20)."""
    retention_seconds: float = 300.0
    redelivery_seconds: float = 360.0
    """The run queue's visibility timeout: how long SQS waits before handing a message to another
    worker. A claimed run must outlive it, so the next delivery can end a run whose worker died."""
    action_timeout_seconds: float = 3600.0
    """How long a run may wait for its client (client tool outputs, approvals) before it expires."""
    coalescing: CoalescingPolicy = field(default_factory=CoalescingPolicy)

    def claimed_expiry(self, now: float) -> int:
        """A claimed run stays readable until `retention_seconds` after the latest moment it can end:
        its deadline, the lease grace, and one redelivery to a worker that ends it if this one dies."""
        return int(now + self.max_run_seconds + self.lease_grace_seconds + self.redelivery_seconds + self.retention_seconds)


class Outcome(enum.StrEnum):
    EXECUTED = "executed"
    SUSPENDED = "suspended"
    DUPLICATE = "duplicate"
    MISSING = "missing"
    RECOVERED = "recovered"


class RunWorker:
    def __init__(
        self,
        store: RunStore,
        provider: ModelProvider,
        catalog: AgentCatalog,
        tools: ToolRegistry,
        policy: WorkerPolicy,
        clock: Clock,
        conversations: ConversationStore | None = None,
    ) -> None:
        self._conversations = conversations
        self._store = store
        self._provider = provider
        self._catalog = catalog
        self._tools = tools
        self._policy = policy
        self._clock = clock
        self._ending = Ending(store, policy.retention_seconds)

    def process(self, message: RunMessage) -> Outcome:
        now = self._clock()
        try:
            # Claim first: the conditional update returns the run, so the common case costs one
            # request; the run is read only when the claim loses.
            claimed = self._store.transition(
                message.org_id,
                message.run_id,
                RunStatus.RUNNING,
                changes={
                    "started_at": now,
                    "lease_expires_at": now + self._policy.max_run_seconds + self._policy.lease_grace_seconds,
                    "expires_at": self._policy.claimed_expiry(now),
                },
            )
        except ConditionFailedError:
            return self._claim_lost(message, now)
        log.info("claimed run; starting agent %s", claimed.agent_id, extra={"run_id": claimed.run_id})
        if claimed.cancel_requested:
            # Cancelled while it was being handed over (e.g. between its answers and this claim):
            # nothing runs, not even an approved tool.
            self._ending.finish(claimed, next_seq=claimed.last_seq + 1, held=[], status=RunStatus.CANCELLED,
                                error=None, usage=claimed.usage, now=self._clock())
            return Outcome.EXECUTED
        return self._execute(claimed)

    def _claim_lost(self, message: RunMessage, now: float) -> Outcome:
        run = self._store.get_run(message.org_id, message.run_id)
        if run is None:
            log.warning("run not found or expired; dropping its message", extra={"run_id": message.run_id})
            return Outcome.MISSING
        if run.status is RunStatus.RUNNING and run.lease_expires_at is not None and now >= run.lease_expires_at:
            self._recover_orphan(run)
            return Outcome.RECOVERED
        log.info("run is %s elsewhere; duplicate delivery ignored", run.status.value, extra={"run_id": run.run_id})
        return Outcome.DUPLICATE

    # -------------------------------------------------------------------------------------------
    def _recover_orphan(self, run: RunRecord) -> None:
        """The worker that claimed this run died before ending it: end it, so readers finish."""
        chunks = self._store.read_chunks(run.org_id, run.run_id, after=0, limit=100_000, consistent=True)
        error = RunError(code="worker_lost", message="The worker running this run stopped before finishing it.")
        log.warning("run was orphaned by a lost worker; ending it as failed", extra={"run_id": run.run_id})
        transcript = rebuild(run.request, [], [c.chunk for c in chunks])
        self._ending.finish(run, next_seq=(chunks[-1].seq if chunks else 0) + 1, held=[],
                            status=RunStatus.FAILED, error=error, usage=usage_of(transcript.usage), now=self._clock())

    def _execute(self, run: RunRecord) -> Outcome:
        try:
            agent = self._catalog.by_id(run.agent_id)
        except UnknownAgentError as exc:
            # The agent was removed (EXTRA_AGENTS changed) between the start and now: end it.
            self._ending.finish(run, next_seq=run.last_seq + 1, held=[], status=RunStatus.FAILED,
                                error=RunError(code=exc.code, message=exc.message), usage=run.usage, now=self._clock())
            return Outcome.EXECUTED
        log_so_far = self._read_log(run)
        if log_so_far is None:
            log.error("the run's log is incomplete; it cannot be carried on", extra={"run_id": run.run_id})
            self._ending.finish(run, next_seq=run.last_seq + 1, held=[], status=RunStatus.FAILED, error=LOG_LOST,
                                usage=run.usage, now=self._clock())
            return Outcome.EXECUTED
        transcript = rebuild(run.request, self._history(run), log_so_far)
        writer = self._writer(run, transcript)
        tools = self.run_tools(agent, run)
        stepper = Stepper(
            self._provider, tools, model_request(agent, run.request, tools, default_model=self._policy.default_model),
            max_steps=agent.max_steps, clock=self._clock,
        )
        events: queue.Queue[object] = queue.Queue()
        cancellation = CancellationToken()
        producer = self._start_stepper(stepper, run, transcript, events, cancellation, deadline=writer.deadline)
        try:
            stop = writer.consume(events)
        except Exception:
            cancellation.cancel()
            log.exception("writing the run's chunks failed; ending it as failed", extra={"run_id": run.run_id})
            self._fail_storing(run, writer)
            return Outcome.EXECUTED
        cancellation.cancel()
        if isinstance(stop, Finished) and stop.status in (RunStatus.CANCELLED, RunStatus.EXPIRED):
            # Let the model stream close, and count the tokens it used up to then (usage updates
            # may still be queued), for the usage chunk and billing.
            producer.join(timeout=1.0)
            writer.latest_usage(events)
        writer.drain()
        if isinstance(stop, Suspend):
            return self._suspend_or_end(run, writer, stop)
        self._finish(run, writer, transcript, stop)
        return Outcome.EXECUTED

    def run_tools(self, agent: AgentDefinition, run: RunRecord) -> RunTools:
        request = run.request
        server = {tool.name: tool for tool in self._tools.select(agent.tools, request.available_tools)}
        client = {
            tool.name: ToolSpec(tool.name, tool.description, tool.input_schema) for tool in request.client_mcp_tools or []
        }
        approvals: set[ToolName] = {*agent.approval_required, *(request.approval_required or [])}
        return RunTools(server, client, frozenset(approvals))

    def _read_log(self, run: RunRecord) -> list[Chunk] | None:
        """The chunks so far: a run that waited is carried on from its log; a new one has none (and
        is not read). None when the log is shorter than the run recorded: it cannot be rebuilt."""
        if run.last_seq == 0:
            return []
        stored = self._store.read_chunks(run.org_id, run.run_id, after=0, limit=100_000, consistent=True)
        if len(stored) < run.last_seq:
            return None
        return [c.chunk for c in stored]

    def _writer(self, run: RunRecord, transcript: TranscriptBuilder) -> RunWriter:
        policy = self._policy
        started = run.started_at or self._clock()
        return RunWriter(
            ChunkWriter(self._store, run.org_id, run.run_id, expires_at=run.expires_at, last_seq=run.last_seq),
            policy.coalescing,
            self._clock,
            deadline=started + policy.max_run_seconds,
            max_run_seconds=policy.max_run_seconds,
            cancel_check_seconds=policy.cancel_check_seconds,
            cancel_requested=lambda: self._cancel_requested(run),
            usage=transcript.usage,
        )

    def _start_stepper(
        self, stepper: Stepper, run: RunRecord, transcript: TranscriptBuilder,
        events: queue.Queue[object], cancellation: CancellationToken, *, deadline: float,
    ) -> threading.Thread:
        def produce() -> None:
            try:
                stepper.run(run, transcript, events.put, cancellation, deadline=deadline)
                events.put(AgentDone())
            except ModelError as exc:
                events.put(AgentDone(RunError(code=exc.code, message=exc.message)))
            except Exception:
                log.exception("the stepper crashed", extra={"run_id": run.run_id})
                events.put(AgentDone(RunError(code="internal_error", message="The agent failed unexpectedly.")))

        producer = threading.Thread(target=produce, name=f"stepper-{run.run_id}", daemon=True)
        producer.start()
        return producer

    def _cancel_requested(self, run: RunRecord) -> bool:
        state = self._store.cancel_state(run.org_id, run.run_id)
        return state is None or state[1]

    def _suspend_or_end(self, run: RunRecord, writer: RunWriter, stop: Suspend) -> Outcome:
        """Wait for the client; or end the run, if a cancel landed first or the wait cannot be stored."""
        try:
            self._suspend(run, writer, stop)
            return Outcome.SUSPENDED
        except ConditionFailedError:
            state = self._store.cancel_state(run.org_id, run.run_id)
            if state is None or not state[1]:
                raise
            log.info("cancelled on its way to waiting for its client", extra={"run_id": run.run_id})
            status, error = RunStatus.CANCELLED, None
        except StorageError as exc:
            log.exception("could not store what the run waits for; ending it as failed", extra={"run_id": run.run_id})
            status, error = RunStatus.FAILED, RunError(code="wait_not_stored", message=f"The run could not wait for its client: {exc.message}")
        self._ending.finish(run, next_seq=writer.chunks.next_seq, held=writer.state.held, status=status,
                            error=error, usage=usage_of(writer.state.usage), now=self._clock())
        return Outcome.EXECUTED

    def _suspend(self, run: RunRecord, writer: RunWriter, stop: Suspend) -> None:
        now = self._clock()
        action_expires_at = now + self._policy.action_timeout_seconds
        expires_at = self._policy.claimed_expiry(action_expires_at)
        usage = writer.state.usage
        self._ending.suspend(
            run, next_seq=writer.chunks.next_seq, held=writer.state.held, actions=stop.actions,
            usage=usage_of(usage), action_expires_at=action_expires_at, expires_at=expires_at,
        )
        if run.request.conversation_id is not None and self._conversations is not None:
            # A follow-up turn of the conversation finds the waiting run (seed 001's approval flow).
            self._conversations.set_active_run(run.org_id, run.request.conversation_id, run.run_id, expires_at=expires_at)
        log.info("run waits for its client: %d action(s)", len(stop.actions), extra={"run_id": run.run_id})

    def _finish(self, run: RunRecord, writer: RunWriter, transcript: TranscriptBuilder, stop: Finished) -> None:
        if stop.status is RunStatus.SUCCEEDED:
            # Before the end event: a client that starts its next turn on `end` must find this one.
            try:
                self._remember_turn(run, transcript.reply_text)
            except Exception:
                log.exception("could not save the turn to the conversation", extra={"run_id": run.run_id})
        log.info(
            "run ended %s: %d token deltas in %d chunk writes",
            stop.status.value, writer.state.tokens_seen, writer.chunks.writes, extra={"run_id": run.run_id},
        )
        self._ending.finish(run, next_seq=writer.chunks.next_seq, held=writer.state.held, status=stop.status,
                            error=stop.error, usage=usage_of(writer.state.usage), now=self._clock())

    def _fail_storing(self, run: RunRecord, writer: RunWriter) -> None:
        try:
            self._ending.finish(run, next_seq=writer.chunks.next_seq, held=[], status=RunStatus.FAILED,
                                error=RunError(code="internal_error", message="Storing the run's output failed."),
                                usage=usage_of(writer.state.usage), now=self._clock())
        except Exception:
            # Leave the message to SQS: redelivery after the lease finds the orphan and ends it.
            log.exception("could not end the run either", extra={"run_id": run.run_id})
            raise

    def _history(self, run: RunRecord) -> list[HistoryMessage]:
        """An explicit `conversationHistory` replaces the server-loaded one."""
        request = run.request
        if request.conversation_history is not None:
            return list(request.conversation_history)
        if request.conversation_id is None or self._conversations is None:
            return []
        recent = self._conversations.recent_messages(
            run.org_id, request.conversation_id, limit=self._policy.history_messages
        )
        # Only what came before this run: a run carried on after a wait sees the history it began
        # with, even if the conversation moved on meanwhile (the log is the source of truth).
        return [HistoryMessage(role=m.role, content=m.content) for m in recent if m.created_at < run.created_at]

    def _remember_turn(self, run: RunRecord, reply: str) -> None:
        if run.request.conversation_id is None or self._conversations is None:
            return
        self._conversations.append_turn(
            run.org_id, run.request.conversation_id,
            run_id=run.run_id, at=run.created_at,
            user=run.request.task[:MEMORY_MESSAGE_CHARS], assistant=reply[:MEMORY_MESSAGE_CHARS],
        )
