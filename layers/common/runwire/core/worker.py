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

from ..errors import ConditionFailedError, LeaseLostError, ModelError, StorageError, UnknownAgentError
from .agents import AgentCatalog, AgentDefinition
from .cancellation import CancellationToken
from .chunks import ChunkWriter, CoalescingPolicy
from .ending import Ending, usage_of
from .lease import LeaseKeeper, LeasePolicy
from .metrics import NullMetrics, RunMetrics
from .models import (
    Chunk,
    HistoryMessage,
    InterruptedChunk,
    Lease,
    RunError,
    RunMessage,
    RunRecord,
    RunStatus,
    TextChunk,
    ToolName,
    Usage,
)
from .ports import Clock, ConversationStore, Delivery, ModelProvider, RunQueue, RunStore, ToolSpec
from .run_writer import AgentDone, Finished, RunWriter, Superseded, Suspend, timed_out
from .runs import run_holding_conversation
from .stepper import ModelRetryPolicy, RunTools, Stepper, model_request
from .tools import ToolRegistry
from .transcript import TokenUsage, TranscriptBuilder, rebuild

log = logging.getLogger("runwire.worker")

LOG_LOST = RunError(code="run_log_unavailable", message="The run's stored log could not be read whole; it cannot be carried on.")
WORKER_LOST = RunError(code="worker_lost", message="The workers running this run kept stopping before finishing it.")

MEMORY_MESSAGE_CHARS = 100_000
"""What a conversation remembers of one message: enough for any prompt, and inside DynamoDB's item size."""


@dataclass
class WorkerPolicy:
    default_model: str = "claude-sonnet-4-5"
    max_run_seconds: float = 120.0
    """The limit on each stretch of work (from a claim to the run's end or its next wait)."""
    cancel_check_seconds: float = 0.5
    history_messages: int = 20
    """How many of a conversation's latest messages a run sees (seed 000: the last 20)."""
    retention_seconds: float = 300.0
    redelivery_seconds: float = 360.0
    """The run queue's visibility timeout: how long SQS hides a message whose worker died before it
    could shorten that (`lease.message_visibility_seconds`) — the longest a take-over can wait."""
    action_timeout_seconds: float = 3600.0
    """How long a run may wait for its client (client tool outputs, approvals) before it expires."""
    queued_behind_poll_seconds: int = 2
    """A run queued behind another run of its conversation is looked at again this often (its
    message comes back after this delay) until that run no longer holds the conversation."""
    lease: LeasePolicy = field(default_factory=LeasePolicy)
    model_retries: ModelRetryPolicy = field(default_factory=ModelRetryPolicy)
    coalescing: CoalescingPolicy = field(default_factory=CoalescingPolicy)

    def claimed_expiry(self, now: float) -> int:
        """A claimed run stays readable until `retention_seconds` after the latest moment it can end:
        its deadline, then one take-over per attempt (each a lease and a message's reappearance),
        and one slow redelivery."""
        lease = self.lease
        takeovers = lease.max_attempts * (lease.lease_seconds + lease.message_visibility_seconds)
        return int(now + self.max_run_seconds + takeovers + self.redelivery_seconds + self.retention_seconds)


class Outcome(enum.StrEnum):
    EXECUTED = "executed"
    SUSPENDED = "suspended"
    DUPLICATE = "duplicate"
    MISSING = "missing"
    RECOVERED = "recovered"
    """Taken over from a worker whose lease lapsed, and carried on (or ended, after MAX_ATTEMPTS)."""
    SUPERSEDED = "superseded"
    """This worker's lease lapsed and another took the run over: it stopped without writing."""
    DEFERRED = "deferred"
    """The run waits behind another run of its conversation: its message comes back later."""


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
        metrics: RunMetrics | None = None,
        queue: RunQueue | None = None,
    ) -> None:
        self._queue = queue
        self._conversations = conversations
        self._metrics = metrics or NullMetrics()
        self._store = store
        self._provider = provider
        self._catalog = catalog
        self._tools = tools
        self._policy = policy
        self._clock = clock
        self._ending = Ending(store, policy.retention_seconds)

    def process(self, message: RunMessage, delivery: Delivery | None = None) -> Outcome:
        """Run one delivery of a run's message. `delivery`: the message, kept hidden from other
        workers while this one works (so that when it dies, another takes the run over soon)."""
        if delivery is not None:
            delivery.keep_invisible(self._policy.lease.message_visibility_seconds)
        if message.after_run_id is not None and self._queue is not None:
            ahead = self._run_ahead(message)
            if ahead is not None:
                # A new message rather than this one made invisible: waiting must not count towards
                # the queue's maxReceiveCount. Sent before this one is deleted, so none is lost.
                self._queue.enqueue(message, delay_seconds=self._policy.queued_behind_poll_seconds)
                log.info("run waits behind %s (%s)", ahead.run_id, ahead.status.value, extra={"run_id": message.run_id})
                return Outcome.DEFERRED
        now = self._clock()
        lease = self._policy.lease.new_lease(now)
        try:
            # Claim first (the run's lease and its fence in one transaction, then the run read back);
            # only a claim that loses reads the run again, to see whether its lease has lapsed.
            claimed = self._store.claim(message.org_id, message.run_id, lease=lease, now=now,
                                        expires_at=self._policy.claimed_expiry(now))
        except ConditionFailedError:
            return self._claim_lost(message, lease, delivery)
        log.info("claimed run; starting agent %s", claimed.agent_id, extra={"run_id": claimed.run_id})
        return self._execute(claimed, lease, delivery, recovered=False)

    def _run_ahead(self, message: RunMessage) -> RunRecord | None:
        """The run of its conversation this queued run still waits behind, if any: the one it was
        queued behind, or, when that one was cancelled before it started, the one that one waited for."""
        run = self._store.get_run(message.org_id, message.run_id)
        if run is None or run.status is not RunStatus.QUEUED or run.after_run_id is None:
            return None  # gone, cancelled, or already claimed: the claim decides
        ahead = self._store.get_run(message.org_id, run.after_run_id)
        return run_holding_conversation(ahead, lambda run_id: self._store.get_run(message.org_id, run_id))

    def _claim_lost(self, message: RunMessage, lease: Lease, delivery: Delivery | None) -> Outcome:
        run = self._store.get_run(message.org_id, message.run_id)
        if run is None:
            log.warning("run not found or expired; dropping its message", extra={"run_id": message.run_id})
            return Outcome.MISSING
        now = self._clock()
        if not run.lease_lapsed(now):
            log.info("run is %s elsewhere; duplicate delivery ignored", run.status.value, extra={"run_id": run.run_id})
            return Outcome.DUPLICATE
        try:
            taken = self._store.take_over(run.org_id, run.run_id, lease=Lease(lease.owner, now + self._policy.lease.lease_seconds),
                                          previous_owner=run.lease_owner, now=now)
        except ConditionFailedError:
            log.info("another worker took the run over first", extra={"run_id": run.run_id})
            return Outcome.DUPLICATE
        log.warning("took the run over from a worker whose lease lapsed (take-over %d)", taken.takeovers,
                    extra={"run_id": run.run_id})
        self._metrics.run_recovered()
        outcome = self._execute(taken, lease, delivery, recovered=True)
        return Outcome.RECOVERED if outcome is Outcome.EXECUTED else outcome

    # -------------------------------------------------------------------------------------------
    def _execute(self, run: RunRecord, lease: Lease, delivery: Delivery | None, *, recovered: bool) -> Outcome:
        # The heartbeat starts at the claim: reading a long log must not cost the lease.
        keeper = LeaseKeeper(self._store, run, lease, self._policy.lease, self._clock, delivery,
                             cancel_check_seconds=self._policy.cancel_check_seconds).start()
        try:
            return self._carry_on(run, keeper, recovered=recovered)
        finally:
            keeper.stop()

    def _carry_on(self, run: RunRecord, keeper: LeaseKeeper, *, recovered: bool) -> Outcome:
        log_so_far = self._read_log(run, recovered=recovered)
        if log_so_far is None:
            log.error("the run's log is incomplete; it cannot be carried on", extra={"run_id": run.run_id})
            return self._end_now(run, keeper, [], RunStatus.FAILED, LOG_LOST, run.usage, next_seq=run.last_seq + 1)
        transcript = rebuild(run.request, self._history(run), log_so_far)
        held: list[Chunk] = []
        lost = lost_usage(run, transcript.usage) if recovered else None
        if lost is not None:
            # What the dead worker used beyond its log: logged with the next write, so usage sums every attempt.
            transcript.add(lost)
            held.append(lost)
        next_seq = len(log_so_far) + 1
        usage = usage_of(transcript.usage)
        if run.cancel_requested:
            # Cancelled while it was being handed over (e.g. between its answers and this claim):
            # nothing runs, not even an approved tool.
            return self._end_now(run, keeper, held, RunStatus.CANCELLED, None, usage, next_seq=next_seq)
        if run.takeovers >= self._policy.lease.max_attempts:
            log.error("the run's workers died %d times; ending it", run.takeovers, extra={"run_id": run.run_id})
            return self._end_now(run, keeper, held, RunStatus.FAILED, WORKER_LOST, usage, next_seq=next_seq)
        if self._clock() >= self._deadline(run):
            # Taken over past its deadline (a take-over does not extend the stretch's limit): no tool runs.
            return self._end_now(run, keeper, held, RunStatus.EXPIRED, timed_out(self._policy.max_run_seconds), usage,
                                 next_seq=next_seq)
        try:
            agent = self._catalog.by_id(run.agent_id)
        except UnknownAgentError as exc:
            # The agent was removed (EXTRA_AGENTS changed) between the start and now: end it.
            return self._end_now(run, keeper, held, RunStatus.FAILED, RunError(code=exc.code, message=exc.message),
                                 usage, next_seq=next_seq)
        return self._step_and_end(run, agent, transcript, keeper, held, next_seq - 1)

    def _deadline(self, run: RunRecord) -> float:
        """The stretch's limit counts from its first claim; a take-over carries on within it."""
        return (run.started_at or self._clock()) + self._policy.max_run_seconds

    def _step_and_end(
        self, run: RunRecord, agent: AgentDefinition, transcript: TranscriptBuilder, keeper: LeaseKeeper,
        held: list[Chunk], last_seq: int,
    ) -> Outcome:
        writer = self._writer(run, transcript, keeper, last_seq)
        keeper.note_usage(usage_of(transcript.usage))
        for chunk in held:
            writer.hold(chunk)
        tools = self.run_tools(agent, run)
        stepper = Stepper(
            self._provider, tools, model_request(agent, run.request, tools, default_model=self._policy.default_model),
            max_steps=agent.max_steps, clock=self._clock, retries=self._policy.model_retries,
            on_retry=self._metrics.model_retried,
        )
        events: queue.Queue[object] = queue.Queue()
        cancellation = CancellationToken()
        producer = self._start_stepper(stepper, run, transcript, events, cancellation, deadline=writer.deadline)
        try:
            stop = writer.consume(events)
        except Exception:
            cancellation.cancel()
            log.exception("writing the run's chunks failed; ending it as failed", extra={"run_id": run.run_id})
            return self._fail_storing(run, writer, keeper.owner)
        cancellation.cancel()
        if isinstance(stop, Superseded):
            return Outcome.SUPERSEDED
        if isinstance(stop, Finished) and stop.status in (RunStatus.CANCELLED, RunStatus.EXPIRED):
            # Let the model stream close, and count the tokens it used up to then (usage updates
            # may still be queued), for the usage chunk and billing.
            producer.join(timeout=1.0)
            writer.latest_usage(events)
        self._metrics.tokens_streamed(writer.state.tokens_seen)
        try:
            writer.drain()
            if isinstance(stop, Suspend):
                return self._suspend_or_end(run, writer, stop, keeper.owner)
            self._finish(run, writer, transcript, stop, keeper)
        except LeaseLostError:
            log.warning("another worker took the run over; this one stops without ending it", extra={"run_id": run.run_id})
            return Outcome.SUPERSEDED
        return Outcome.EXECUTED

    def _end_now(
        self, run: RunRecord, keeper: LeaseKeeper, held: list[Chunk], status: RunStatus, error: RunError | None,
        usage: Usage | None, *, next_seq: int,
    ) -> Outcome:
        """End a run this worker holds before any step runs."""
        try:
            self._ending.finish(run, next_seq=next_seq, held=held, status=status, error=error, usage=usage,
                                now=self._clock(), owner=keeper.owner)
        except LeaseLostError:
            return Outcome.SUPERSEDED
        self._metrics.run_ended(status.value)
        return Outcome.EXECUTED

    def run_tools(self, agent: AgentDefinition, run: RunRecord) -> RunTools:
        request = run.request
        server = {tool.name: tool for tool in self._tools.select(agent.tools, request.available_tools)}
        client = {
            tool.name: ToolSpec(tool.name, tool.description, tool.input_schema) for tool in request.client_mcp_tools or []
        }
        approvals: set[ToolName] = {*agent.approval_required, *(request.approval_required or [])}
        return RunTools(server, client, frozenset(approvals))

    def _read_log(self, run: RunRecord, *, recovered: bool) -> list[Chunk] | None:
        """The chunks so far: a run that waited or was taken over is carried on from its log; a new
        one has none (and is not read). None when the log is shorter than the run recorded."""
        if run.last_seq == 0 and not recovered:
            return []
        stored = self._store.read_chunks(run.org_id, run.run_id, after=0, limit=100_000, consistent=True)
        if len(stored) < run.last_seq:
            return None
        return [c.chunk for c in stored]

    def _writer(self, run: RunRecord, transcript: TranscriptBuilder, keeper: LeaseKeeper, last_seq: int) -> RunWriter:
        policy = self._policy
        return RunWriter(
            ChunkWriter(self._store, run.org_id, run.run_id, expires_at=run.expires_at, last_seq=last_seq,
                        owner=keeper.owner),
            policy.coalescing,
            self._clock,
            deadline=self._deadline(run),
            max_run_seconds=policy.max_run_seconds,
            cancel_check_seconds=policy.cancel_check_seconds,
            lease=keeper,
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

    def _suspend_or_end(self, run: RunRecord, writer: RunWriter, stop: Suspend, owner: str) -> Outcome:
        """Wait for the client; or end the run, if a cancel landed first or the wait cannot be stored."""
        try:
            self._suspend(run, writer, stop, owner)
            self._metrics.waited_for_client()
            return Outcome.SUSPENDED
        except ConditionFailedError:
            run_now = self._store.get_run(run.org_id, run.run_id)
            if run_now is None or run_now.lease_owner != owner:
                raise LeaseLostError(f"run {run.run_id} is held by another worker") from None
            if not run_now.cancel_requested:
                raise
            log.info("cancelled on its way to waiting for its client", extra={"run_id": run.run_id})
            status, error = RunStatus.CANCELLED, None
        except StorageError as exc:
            log.exception("could not store what the run waits for; ending it as failed", extra={"run_id": run.run_id})
            status, error = RunStatus.FAILED, RunError(code="wait_not_stored", message=f"The run could not wait for its client: {exc.message}")
        self._ending.finish(run, next_seq=writer.chunks.next_seq, held=writer.state.held, status=status,
                            error=error, usage=usage_of(writer.state.usage), now=self._clock(), owner=owner)
        self._metrics.run_ended(status.value)
        return Outcome.EXECUTED

    def _suspend(self, run: RunRecord, writer: RunWriter, stop: Suspend, owner: str) -> None:
        now = self._clock()
        action_expires_at = now + self._policy.action_timeout_seconds
        expires_at = self._policy.claimed_expiry(action_expires_at)
        usage = writer.state.usage
        self._ending.suspend(
            run, next_seq=writer.chunks.next_seq, held=writer.state.held, actions=stop.actions,
            usage=usage_of(usage), action_expires_at=action_expires_at, expires_at=expires_at, owner=owner,
        )
        if run.request.conversation_id is not None and self._conversations is not None:
            # A follow-up turn of the conversation finds the waiting run (seed 001's approval flow),
            # unless a newer run took the conversation meanwhile (a waiting run does not hold it).
            try:
                self._conversations.replace_active_run(run.org_id, run.request.conversation_id, run.run_id,
                                                       expected=run.run_id, expires_at=expires_at)
            except ConditionFailedError:
                log.info("the conversation moved on to a newer run", extra={"run_id": run.run_id})
        log.info("run waits for its client: %d action(s)", len(stop.actions), extra={"run_id": run.run_id})

    def _finish(
        self, run: RunRecord, writer: RunWriter, transcript: TranscriptBuilder, stop: Finished, keeper: LeaseKeeper
    ) -> None:
        if self._remembers(run) and stop.status in (RunStatus.SUCCEEDED, RunStatus.CANCELLED):
            # Before the end event: a client that starts its next turn on `end` must find this one.
            # The turn's write is not fenced: first make sure no other worker holds the run (a lost
            # lease stops here; any other failure only costs the turn, and the fenced end decides).
            try:
                keeper.confirm()
                reply = transcript.reply_text if stop.status is RunStatus.SUCCEEDED else self._logged_text(run)
                if reply:
                    self._remember_turn(run, reply)
            except LeaseLostError:
                raise
            except Exception:
                log.exception("could not save the turn to the conversation", extra={"run_id": run.run_id})
        log.info(
            "run ended %s: %d token deltas in %d chunk writes",
            stop.status.value, writer.state.tokens_seen, writer.chunks.writes, extra={"run_id": run.run_id},
        )
        self._ending.finish(run, next_seq=writer.chunks.next_seq, held=writer.state.held, status=stop.status,
                            error=stop.error, usage=usage_of(writer.state.usage), now=self._clock(), owner=keeper.owner)
        self._metrics.run_ended(stop.status.value)

    def _fail_storing(self, run: RunRecord, writer: RunWriter, owner: str) -> Outcome:
        try:
            self._ending.finish(run, next_seq=writer.chunks.next_seq, held=[], status=RunStatus.FAILED,
                                error=RunError(code="internal_error", message="Storing the run's output failed."),
                                usage=usage_of(writer.state.usage), now=self._clock(), owner=owner)
        except LeaseLostError:
            return Outcome.SUPERSEDED
        except Exception:
            # Leave the message to SQS: it reappears, and the next worker takes the run over.
            log.exception("could not end the run either", extra={"run_id": run.run_id})
            raise
        self._metrics.run_ended(RunStatus.FAILED.value)
        return Outcome.EXECUTED

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

    def _logged_text(self, run: RunRecord) -> str:
        """A cancelled (or interrupted) run's answer as far as its readers saw it: the text in its log
        (the model may have streamed a little more that was never written). Remembered, as chat apps
        keep a stopped reply, so the conversation's next run sees what its user saw."""
        stored = self._store.read_chunks(run.org_id, run.run_id, after=0, limit=100_000, consistent=True)
        return "".join(c.chunk.text for c in stored if isinstance(c.chunk, TextChunk))

    def _remembers(self, run: RunRecord) -> bool:
        return run.request.conversation_id is not None and self._conversations is not None

    def _remember_turn(self, run: RunRecord, reply: str) -> None:
        if run.request.conversation_id is None or self._conversations is None:
            return
        self._conversations.append_turn(
            run.org_id, run.request.conversation_id,
            run_id=run.run_id, at=run.created_at,
            user=run.request.task[:MEMORY_MESSAGE_CHARS], assistant=reply[:MEMORY_MESSAGE_CHARS],
        )


def lost_usage(run: RunRecord, logged: TokenUsage | None) -> InterruptedChunk | None:
    """The tokens a dead worker used beyond what its log records (its last lease renewal's count,
    less the log's), as the chunk that logs them; None when the log has them all."""
    live = run.live_usage
    if live is None:
        return None
    input_tokens = live.input_tokens - (logged.input_tokens if logged else 0)
    output_tokens = live.output_tokens - (logged.output_tokens if logged else 0)
    if input_tokens <= 0 and output_tokens <= 0:
        return None
    return InterruptedChunk(reason="worker_lost", model=live.model, input_tokens=max(0, input_tokens),
                            output_tokens=max(0, output_tokens))
