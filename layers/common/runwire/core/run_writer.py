"""The run writer: the worker's consumer and the only thread that writes a run's chunks.

It coalesces text deltas into few numbered chunk writes, writes tool calls and results as they
come, checks for cancellation and the deadline on its own clock (so a stalled model cannot stall
them), and decides how this stretch of work stops: finished (with a status and maybe an error) or
suspended (waiting for the client). A step's `step_end` is held until the next chunk, so the last
one travels in the ending's single write instead of costing a request of its own.
"""

from __future__ import annotations

import logging
import queue
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import LeaseLostError
from .chunks import ChunkWriter, CoalescingPolicy, TextCoalescer
from .ending import usage_of
from .models import (
    Chunk,
    InterruptedChunk,
    PendingAction,
    RunError,
    RunStatus,
    TextChunk,
    ToolResultChunk,
    ToolUseChunk,
    Usage,
)
from .ports import Clock, TextDelta
from .stepper import StepEnded, Suspended
from .transcript import TokenUsage


@dataclass(frozen=True)
class AgentDone:
    """The stepper returned (error None) or failed."""

    error: RunError | None = None


@dataclass(frozen=True)
class Finished:
    status: RunStatus
    error: RunError | None = None


@dataclass(frozen=True)
class Suspend:
    actions: list[PendingAction]


@dataclass(frozen=True)
class Superseded:
    """Another worker took the run over (this one's lease lapsed): stop, and write nothing more."""


Stop = Finished | Suspend | Superseded


class HeldLease(Protocol):
    """The writer's view of its worker's lease (core/lease.py: LeaseKeeper)."""

    def cancel_requested(self) -> bool:
        """Cancelled (or gone); LeaseLostError when another worker holds the run."""

    def note_usage(self, usage: Usage | None, *, step_ended: bool = False) -> None:
        """The usage so far, recorded with the next renewal (at once at a step's end)."""

log = logging.getLogger("runwire.writer")


def timed_out(max_run_seconds: float) -> RunError:
    return RunError(code="run_timed_out", message=f"The run exceeded its limit of {max_run_seconds:g} seconds.")


@dataclass
class WriterState:
    usage: TokenUsage | None = None
    held: list[Chunk] = field(default_factory=list)
    tokens_seen: int = 0


class RunWriter:
    def __init__(
        self,
        chunks: ChunkWriter,
        coalescing: CoalescingPolicy,
        clock: Clock,
        *,
        deadline: float,
        max_run_seconds: float,
        cancel_check_seconds: float,
        lease: HeldLease,
        usage: TokenUsage | None = None,
    ) -> None:
        self.chunks = chunks
        self._coalescer = TextCoalescer(coalescing)
        self._clock = clock
        self.deadline = deadline
        self._max_run_seconds = max_run_seconds
        self._cancel_every = cancel_check_seconds
        self._lease = lease
        self.state = WriterState(usage=usage)

    def consume(self, events: queue.Queue[object]) -> Stop:
        """Write what the stepper emits until it is done, suspends, or the run must stop."""
        try:
            return self._consume(events)
        except LeaseLostError:
            log.warning("another worker holds the run now; this one stops without writing")
            return Superseded()

    def _consume(self, events: queue.Queue[object]) -> Stop:
        next_cancel_check = self._clock() + self._cancel_every
        while True:
            now = self._clock()
            wake = min(t for t in (self._coalescer.deadline(), next_cancel_check, self.deadline) if t is not None)
            try:
                event = events.get(timeout=max(0.0, wake - now))
            except queue.Empty:
                event = None
            now = self._clock()
            stop = self._handle(event, now)
            if stop is not None:
                return stop
            text = self._coalescer.flush_due(now)
            if text:
                self._write(TextChunk(text=text))
            if now >= self.deadline:
                return Finished(RunStatus.EXPIRED, timed_out(self._max_run_seconds))
            if now >= next_cancel_check:
                next_cancel_check = now + self._cancel_every
                if self._lease.cancel_requested():
                    log.info("cancel requested; closing the model stream")
                    return Finished(RunStatus.CANCELLED)

    def hold(self, chunk: Chunk) -> None:
        """Write `chunk` with the next write (or in the ending's), not on its own."""
        self.state.held.append(chunk)

    def drain(self) -> None:
        """Write the text still buffered (before the ending)."""
        text = self._coalescer.drain(self._clock())
        if text:
            self._write(TextChunk(text=text))

    def latest_usage(self, events: queue.Queue[object]) -> None:
        """Take the usage updates still queued (a cancelled model stream's last counts)."""
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, TokenUsage):
                self.state.usage = event

    # -------------------------------------------------------------------------------------------
    def _handle(self, event: object, now: float) -> Stop | None:
        if isinstance(event, TextDelta):
            self.state.tokens_seen += 1
            text = self._coalescer.add(event.text, now)
            if text:
                self._write(TextChunk(text=text))
        elif isinstance(event, ToolUseChunk | ToolResultChunk):
            self.drain()
            self._write(event)
        elif isinstance(event, StepEnded):
            self.drain()
            self.hold(event.chunk)
            self._lease.note_usage(usage_of(self.state.usage), step_ended=True)
        elif isinstance(event, InterruptedChunk):
            self.drain()
            self.hold(event)
        elif isinstance(event, TokenUsage):
            self.state.usage = event
            self._lease.note_usage(usage_of(event))
        elif isinstance(event, Suspended):
            return Suspend(event.actions)
        elif isinstance(event, AgentDone):
            return Finished(RunStatus.SUCCEEDED if event.error is None else RunStatus.FAILED, event.error)
        return None

    def _write(self, chunk: Chunk) -> None:
        for held in self.state.held:
            self.chunks.write(held)
        self.state.held.clear()
        self.chunks.write(chunk)
