"""A worker's lease on the run it works on, and the heartbeat that keeps it.

A running run is held by one claim (`RunRecord.lease_owner`). The holder renews its lease every
few seconds; if it dies, the lease lapses, its queue message reappears (it was kept invisible only
a little ahead of each renewal), and the next worker takes the run over from its log. Every write
the holder makes that a reader sees is conditional on still holding the run (fencing), so a
worker that was frozen past its lease and wakes up writes nothing a reader sees.

The periodic renewal costs no read: the writer checks for a cancel twice a second, and a renewal —
one conditional UpdateItem that answers the status and the cancel flag — stands in for the check
that follows it within half a second. A step's end adds one renewal (its usage, at once), and so
does the confirmation before a conversation's turn is written. It beats on a thread of its own, so nothing slow on the writer's thread (a write
retrying a throttle, a long tool) can make a live worker look dead.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

from ..errors import LeaseLostError
from .models import Lease, RunMessage, RunRecord, Usage
from .ports import Clock, Delivery, RunQueue, RunStore

log = logging.getLogger("runwire.lease")


@dataclass(frozen=True)
class LeasePolicy:
    lease_seconds: float = 10.0
    """How long a claim holds the run without renewal: a dead worker's run waits at most this long
    (plus its message's reappearance) before another worker takes it over."""
    renew_seconds: float = 3.0
    message_visibility_seconds: int = 20
    """How far ahead the worker keeps its message hidden at each renewal. Longer than the lease, so
    that when the message reappears, its run's lease has lapsed and the run can be taken over."""
    max_attempts: int = 3
    """Workers that may die on one stretch of work before the run ends `failed` (`worker_lost`)."""

    def new_lease(self, now: float) -> Lease:
        return Lease(owner=uuid.uuid4().hex, expires_at=now + self.lease_seconds)


class LeaseKeeper:
    """The heartbeat: renews the lease and keeps the message hidden, on a thread of its own, so a
    slow write (storage retrying a throttle) or a long tool never lets a live worker's run be taken
    over. Each renewal records the worker's usage so far, and answers the cancel flag, which the
    writer's next cancel check uses instead of a read of its own."""

    def __init__(
        self, store: RunStore, run: RunRecord, lease: Lease, policy: LeasePolicy, clock: Clock,
        delivery: Delivery | None = None, *, cancel_check_seconds: float = 0.5,
    ) -> None:
        self._store = store
        self._run = run
        self.owner = lease.owner
        self._policy = policy
        self._clock = clock
        self._delivery = delivery
        self._cancel_every = cancel_check_seconds
        self._usage: Usage | None = None
        self._answer: tuple[float, bool] | None = None
        """(when, cancel flag) of the latest renewal."""
        self._lost = False
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run.run_id}", daemon=True)

    def start(self) -> LeaseKeeper:
        """Renew every `renew_seconds` from now (the claim), until `stop`."""
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def note_usage(self, usage: Usage | None, *, step_ended: bool = False) -> None:
        """The worker's usage so far; at a step's end, renewed at once, so a worker that dies before
        the step's `step_end` is logged leaves its tokens on the run for the next one."""
        self._usage = usage
        if step_ended:
            self._wake.set()

    def cancel_requested(self) -> bool:
        """True when the run was cancelled (or vanished); LeaseLostError when another worker holds it."""
        if self._lost:
            raise LeaseLostError(f"run {self._run.run_id} is held by another worker")
        answer = self._answer
        if answer is not None and self._clock() - answer[0] < self._cancel_every:
            return answer[1]  # the renewal just answered it
        state = self._store.cancel_state(self._run.org_id, self._run.run_id)
        return state is None or state[1]

    def confirm(self) -> None:
        """Renew now, on the caller's thread: LeaseLostError if another worker holds the run (before a
        write that is not fenced by the lease, such as the conversation's turn)."""
        self._renew()

    # -------------------------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._policy.renew_seconds)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self._renew()
            except LeaseLostError:
                self._lost = True
                return
            except Exception:
                # The next beat tries again; the lease holds a few beats' time.
                log.warning("could not renew the lease", exc_info=True, extra={"run_id": self._run.run_id})

    def _renew(self) -> None:
        now = self._clock()
        _, cancelled = self._store.renew_lease(
            self._run.org_id, self._run.run_id, lease=Lease(self.owner, now + self._policy.lease_seconds),
            live_usage=self._usage,
        )
        self._answer = (now, cancelled)
        if self._delivery is not None:
            self._delivery.keep_invisible(self._policy.message_visibility_seconds)


class LostMessageSweeper:
    """The net under take-overs: a run whose worker died is taken over when its message reappears.
    If that message is gone too (deleted by a duplicate delivery while the worker still lived, or
    never delivered again), the run would stay `running` with nobody to carry it on. The sweep finds
    running runs whose lease lapsed longer ago than a message takes to reappear and sends each a new
    message; a message too many is harmless (the claim refuses a duplicate)."""

    def __init__(
        self, store: RunStore, queue: RunQueue, clock: Clock, policy: LeasePolicy, *,
        horizon_seconds: float, batch: int = 100,
    ) -> None:
        self._store = store
        self._queue = queue
        self._clock = clock
        self._policy = policy
        self._horizon = horizon_seconds
        """How long a run lives after its lease lapsed: older index entries are runs already gone."""
        self._batch = batch

    def sweep(self) -> int:
        """Messages sent."""
        now = self._clock()
        overdue_since = now - 2 * self._policy.message_visibility_seconds
        sent = 0
        for org_id, run_id in self._store.lapsed_leases(before=overdue_since, since=now - self._horizon,
                                                        limit=self._batch):
            run = self._store.get_run(org_id, run_id)
            if run is None or not run.lease_lapsed(self._clock()):
                continue  # ended, or taken over meanwhile (the index lags the table)
            log.warning("a running run's lease lapsed %.0f s ago and nobody took it over; sending it a new message",
                        now - (run.lease_expires_at or now), extra={"run_id": run_id})
            self._queue.enqueue(RunMessage(run_id=run_id, org_id=org_id))
            sent += 1
        return sent
