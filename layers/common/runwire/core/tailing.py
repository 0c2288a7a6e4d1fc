"""Following a run's chunks as they are written: polling the run store, timed to the writer.

The worker writes a chunk at most once per coalescing window (`write_interval`), and each chunk
carries the time it was written. So a reader that has just received a chunk knows when the next
one can come at the earliest, and polls just after that moment rather than on a fixed beat: one
query per write while tokens flow, and little added lag. How long "just after" is (the margin)
adapts to the store: a timed poll that finds the chunk shrinks it a little, one that misses grows
it more, so it settles near the write-to-visible latency (a few ms on moto, more on DynamoDB).
A poll that finds nothing when a write was due retries soon, backing off.

When nothing is due, the reader waits half as long as it has been idle (from `min_interval`, up
to `idle_interval`): brisk right after the stream opens or a chunk arrives, when the next chunk is
likeliest (the time to first token is what a user notices most), and at most 1/idle_interval
queries a second once a run has been quiet for a second (a model thinking, a tool running). Keep-alive pings go out after
`ping_interval` without output. Every `liveness_interval` without output it asks after the run:
the loop ends when the run has disappeared (expired) or finished with nothing left after the
reader's position (a resume point past the end), and it tells the reader (`RECOVERING`, once per
lapse) when the run's worker stopped renewing its lease, until another worker carries the run on.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .models import EndChunk, StoredChunk
from .ports import Clock


@dataclass(frozen=True)
class PollPolicy:
    write_interval: float = 0.1
    """The writer's coalescing window: consecutive chunk writes are at least this far apart."""
    align_margin: float = 0.005
    """The starting margin; it adapts between `min_margin` and `max_margin`."""
    min_margin: float = 0.001
    max_margin: float = 0.03
    margin_shrink: float = 0.0005
    margin_grow: float = 0.002
    retry_interval: float = 0.01
    min_interval: float = 0.01
    idle_interval: float = 0.5
    ping_interval: float = 15.0
    liveness_interval: float = 5.0

    def adapt_margin(self, margin: float, *, hit: bool) -> float:
        if hit:
            return max(self.min_margin, margin - self.margin_shrink)
        return min(self.max_margin, margin + self.margin_grow)

    def next_wait(
        self, *, now: float, last_written_at: float | None, idle_since: float, misses: int, margin: float | None = None
    ) -> float:
        """Seconds until the next poll. `misses`: empty polls since the last chunk."""
        if last_written_at is not None:
            due = last_written_at + self.write_interval
            if misses == 0:
                return max(0.0, due + (self.align_margin if margin is None else margin) - now)
            if now - due < self.write_interval:
                # The write is late: retry soon, doubling, within one more window.
                return min(self.retry_interval * 2 ** (misses - 1), self.write_interval)
        return min(self.idle_interval, max(self.min_interval, (now - idle_since) / 2))


class KeepAlive:
    """Yielded by `tail_chunks` when a ping is due."""


KEEP_ALIVE = KeepAlive()


class Recovering:
    """Yielded by `tail_chunks` when the run's worker is gone and the run awaits another."""


RECOVERING = Recovering()


class Liveness(enum.Enum):
    ALIVE = "alive"
    RECOVERING = "recovering"
    """Running, but its worker's lease lapsed: another worker will take it over."""
    GONE = "gone"
    """Expired, or finished with nothing after the reader's position."""


async def tail_chunks(
    read: Callable[[int], Awaitable[list[StoredChunk]]],
    is_alive: Callable[[int], Awaitable[Liveness]],
    *,
    after: int,
    policy: PollPolicy,
    clock: Clock,
    sleep: Callable[[float], Awaitable[object]],
) -> AsyncIterator[StoredChunk | KeepAlive | Recovering]:
    opened = clock()
    last_written_at: float | None = None
    idle_since = last_output = last_liveness = opened
    misses = 0
    margin = policy.align_margin
    told_recovering = False
    while True:
        timed = last_written_at is not None and misses == 0  # this poll was timed to a due write
        chunks = await read(after)
        for stored in chunks:
            yield stored
            after = stored.seq
            if isinstance(stored.chunk, EndChunk):
                return
        now = clock()
        if timed:
            margin = policy.adapt_margin(margin, hit=bool(chunks))
        if chunks:
            last_written_at = chunks[-1].written_at
            idle_since = last_output = now
            misses = 0
            told_recovering = False
        else:
            misses += 1
            if now - last_output >= policy.ping_interval:
                yield KEEP_ALIVE
                last_output = now
            if now - last_liveness >= policy.liveness_interval:
                last_liveness = now
                liveness = await is_alive(after)
                if liveness is Liveness.GONE:
                    return
                if liveness is Liveness.RECOVERING and not told_recovering:
                    told_recovering = True
                    yield RECOVERING
        await sleep(
            policy.next_wait(
                now=now, last_written_at=last_written_at, idle_since=idle_since, misses=misses, margin=margin,
            )
        )
