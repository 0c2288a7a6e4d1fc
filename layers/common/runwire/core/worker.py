"""The worker's service: claim a run, run its agent, write its chunks, end it exactly once.

Two threads per run. The producer runs the agent loop (model calls, tools) and only enqueues
events. The consumer — the only writer — coalesces text, writes numbered chunks, checks for
cancellation and the run's deadline, and writes the terminal sequence:

    [error chunk] → [usage chunk, if a model was called] → end chunk (atomically with the status)

Splitting them means a model that stalls cannot stall the flush window, the cancel check or
the deadline: the consumer closes the model stream from its side.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from dataclasses import dataclass, field

from ..errors import ConditionFailedError, ModelError, UnknownAgentError
from .agent_loop import AgentLoop, RunUsage, ToolCompleted, build_model_request
from .agents import AgentCatalog
from .cancellation import CancellationToken
from .chunks import ChunkWriter, CoalescingPolicy, TextCoalescer
from .models import (
    ErrorChunk,
    HistoryMessage,
    RunError,
    RunMessage,
    RunRecord,
    RunStatus,
    TextChunk,
    ToolResultChunk,
    ToolUseChunk,
    Usage,
    UsageChunk,
)
from .ports import Clock, ConversationStore, ModelProvider, RunStore, TextDelta, ToolCallRequested
from .tools import ToolRegistry

log = logging.getLogger("runwire.worker")

MEMORY_MESSAGE_CHARS = 100_000
"""What a conversation remembers of one message: enough for any prompt, and inside DynamoDB's item size."""


@dataclass
class WorkerPolicy:
    default_model: str = "claude-sonnet-4-5"
    max_run_seconds: float = 120.0
    cancel_check_seconds: float = 0.5
    lease_grace_seconds: float = 30.0
    """A run whose worker has not finished it by deadline + grace is taken to be orphaned."""
    history_messages: int = 20
    """How many of a conversation's latest messages a run sees (seed 000: the last 20)."""
    retention_seconds: float = 300.0
    redelivery_seconds: float = 360.0
    """The run queue's visibility timeout: how long SQS waits before handing a message to another
    worker. A claimed run must outlive it, so the next delivery can end a run whose worker died."""

    def claimed_expiry(self, now: float) -> int:
        """A claimed run stays readable until `retention_seconds` after the latest moment it can end:
        its deadline, the lease grace, and one redelivery to a worker that ends it if this one dies."""
        return int(now + self.max_run_seconds + self.lease_grace_seconds + self.redelivery_seconds + self.retention_seconds)
    coalescing: CoalescingPolicy = field(default_factory=CoalescingPolicy)


class Outcome(enum.StrEnum):
    EXECUTED = "executed"
    DUPLICATE = "duplicate"
    MISSING = "missing"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class _AgentDone:
    error: RunError | None = None


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
        self._execute(claimed)
        return Outcome.EXECUTED

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
        chunks = self._store.read_chunks(run.org_id, run.run_id, after=0, limit=100_000)
        writer = ChunkWriter(self._store, run.org_id, run.run_id, expires_at=run.expires_at,
                             last_seq=chunks[-1].seq if chunks else 0)
        error = RunError(code="worker_lost", message="The worker running this run stopped before finishing it.")
        log.warning("run was orphaned by a lost worker; ending it as failed", extra={"run_id": run.run_id})
        self._finish(run, writer, RunStatus.FAILED, error, usage=None)

    def _execute(self, run: RunRecord) -> None:
        policy = self._policy
        try:
            agent = self._catalog.by_id(run.agent_id)
        except UnknownAgentError as exc:
            # The agent was removed (EXTRA_AGENTS changed) between the start and now: end the run.
            writer = ChunkWriter(self._store, run.org_id, run.run_id, expires_at=run.expires_at)
            self._finish(run, writer, RunStatus.FAILED, RunError(code=exc.code, message=exc.message), usage=None)
            return
        tools = self._tools.select(agent.tools, run.request.available_tools)
        model_request = build_model_request(
            agent,
            run.request,
            default_model=policy.default_model,
            history=self._history(run),
            tools=tools,
        )
        loop = AgentLoop(self._provider, tools, max_steps=agent.max_steps)
        events: queue.Queue[object] = queue.Queue()
        cancellation = CancellationToken()

        def produce() -> None:
            try:
                loop.run(model_request, events.put, cancellation)
                events.put(_AgentDone())
            except ModelError as exc:
                events.put(_AgentDone(RunError(code=exc.code, message=exc.message)))
            except Exception:
                log.exception("agent loop crashed", extra={"run_id": run.run_id})
                events.put(_AgentDone(RunError(code="internal_error", message="The agent failed unexpectedly.")))

        producer = threading.Thread(target=produce, name=f"agent-{run.run_id}", daemon=True)
        producer.start()

        writer = ChunkWriter(self._store, run.org_id, run.run_id, expires_at=run.expires_at)
        coalescer = TextCoalescer(policy.coalescing)
        started = run.started_at or self._clock()
        deadline = started + policy.max_run_seconds
        next_cancel_check = self._clock() + policy.cancel_check_seconds
        usage: RunUsage | None = None
        tokens_seen = 0
        output: list[str] = []
        outcome: tuple[RunStatus, RunError | None] | None = None
        try:
            while outcome is None:
                now = self._clock()
                wake = min(t for t in (coalescer.deadline(), next_cancel_check, deadline) if t is not None)
                try:
                    event = events.get(timeout=max(0.0, wake - now))
                except queue.Empty:
                    event = None
                now = self._clock()
                if isinstance(event, TextDelta):
                    tokens_seen += 1
                    output.append(event.text)
                    text = coalescer.add(event.text, now)
                    if text:
                        writer.write(TextChunk(text=text))
                elif isinstance(event, ToolCallRequested):
                    self._drain(coalescer, writer, now)
                    writer.write(ToolUseChunk(id=event.id, name=event.name, input=event.input))
                elif isinstance(event, ToolCompleted):
                    writer.write(ToolResultChunk(id=event.id, output=event.output))
                elif isinstance(event, RunUsage):
                    usage = event
                elif isinstance(event, _AgentDone):
                    status = RunStatus.SUCCEEDED if event.error is None else RunStatus.FAILED
                    outcome = (status, event.error)
                    break
                text = coalescer.flush_due(now)
                if text:
                    writer.write(TextChunk(text=text))
                if now >= deadline:
                    outcome = (
                        RunStatus.EXPIRED,
                        RunError(
                            code="run_timed_out",
                            message=f"The run exceeded its limit of {policy.max_run_seconds:g} seconds.",
                        ),
                    )
                elif now >= next_cancel_check:
                    next_cancel_check = now + policy.cancel_check_seconds
                    current = self._store.get_run(run.org_id, run.run_id)
                    if current is None or current.cancel_requested:
                        log.info("cancel requested; closing the model stream", extra={"run_id": run.run_id})
                        outcome = (RunStatus.CANCELLED, None)
        except Exception:
            cancellation.cancel()
            log.exception("writing the run's chunks failed; ending it as failed", extra={"run_id": run.run_id})
            try:
                self._finish(run, writer, RunStatus.FAILED,
                             RunError(code="internal_error", message="Storing the run's output failed."), usage)
            except Exception:
                # Leave the message to SQS: redelivery after the lease finds the orphan and ends it.
                log.exception("could not end the run either", extra={"run_id": run.run_id})
                raise
            return
        cancellation.cancel()
        if outcome[0] is not RunStatus.SUCCEEDED and outcome[0] is not RunStatus.FAILED:
            # Cancelled or out of time: let the model stream close, and count the tokens it used
            # up to then (usage updates may still be queued), for the usage chunk and billing.
            producer.join(timeout=1.0)
            usage = self._latest_usage(events, usage)
        self._drain(coalescer, writer, self._clock())
        status, error = outcome
        if status is RunStatus.SUCCEEDED:
            # Before the end event: a client that starts its next turn on `end` must find this one.
            try:
                self._remember_turn(run, "".join(output))
            except Exception:
                log.exception("could not save the turn to the conversation", extra={"run_id": run.run_id})
        log.info(
            "run ended %s: %d token deltas in %d chunk writes",
            status.value, tokens_seen, writer.writes, extra={"run_id": run.run_id},
        )
        self._finish(run, writer, status, error, usage)

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
        return [HistoryMessage(role=m.role, content=m.content) for m in recent]

    def _remember_turn(self, run: RunRecord, reply: str) -> None:
        if run.request.conversation_id is None or self._conversations is None:
            return
        self._conversations.append_turn(
            run.org_id, run.request.conversation_id,
            run_id=run.run_id, at=run.created_at,
            user=run.request.task[:MEMORY_MESSAGE_CHARS], assistant=reply[:MEMORY_MESSAGE_CHARS],
        )

    @staticmethod
    def _latest_usage(events: queue.Queue[object], usage: RunUsage | None) -> RunUsage | None:
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                return usage
            if isinstance(event, RunUsage):
                usage = event

    @staticmethod
    def _drain(coalescer: TextCoalescer, writer: ChunkWriter, now: float) -> None:
        text = coalescer.drain(now)
        if text:
            writer.write(TextChunk(text=text))

    def _finish(
        self, run: RunRecord, writer: ChunkWriter, status: RunStatus, error: RunError | None, usage: RunUsage | None
    ) -> None:
        if error is not None:
            writer.write(ErrorChunk(code=error.code, message=error.message))
        final_usage = None
        if usage is not None:
            final_usage = Usage(model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
            writer.write(UsageChunk(model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens))
        self._store.finish(
            run.org_id,
            run.run_id,
            status,
            expected=RunStatus.RUNNING,
            end_seq=writer.next_seq,
            finished_at=self._clock(),
            usage=final_usage,
            error=error,
        )

