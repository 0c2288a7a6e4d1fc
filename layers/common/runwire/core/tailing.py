"""Following a run's chunks as they are written: adaptive polling of the run store.

While chunks flow, the reader polls every `active_interval`; each empty poll doubles the wait up
to `idle_interval`, so a run that is waiting on its model costs few queries. Keep-alive pings
go out after `ping_interval` without output. The loop ends after the end chunk, or when the run
has disappeared (expired) — checked every `liveness_interval`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .models import EndChunk, StoredChunk
from .ports import Clock


@dataclass(frozen=True)
class PollPolicy:
    active_interval: float = 0.04
    idle_interval: float = 0.5
    backoff: float = 2.0
    ping_interval: float = 15.0
    liveness_interval: float = 30.0


class KeepAlive:
    """Yielded by `tail_chunks` when a ping is due."""


KEEP_ALIVE = KeepAlive()


async def tail_chunks(
    read: Callable[[int], Awaitable[list[StoredChunk]]],
    is_alive: Callable[[], Awaitable[bool]],
    *,
    after: int,
    policy: PollPolicy,
    clock: Clock,
    sleep: Callable[[float], Awaitable[object]],
) -> AsyncIterator[StoredChunk | KeepAlive]:
    interval = policy.active_interval
    last_output = last_liveness = clock()
    while True:
        chunks = await read(after)
        for stored in chunks:
            yield stored
            after = stored.seq
            if isinstance(stored.chunk, EndChunk):
                return
        now = clock()
        if chunks:
            interval = policy.active_interval
            last_output = now
        else:
            interval = min(interval * policy.backoff, policy.idle_interval)
            if now - last_output >= policy.ping_interval:
                yield KEEP_ALIVE
                last_output = now
            if now - last_liveness >= policy.liveness_interval:
                last_liveness = now
                if not await is_alive():
                    return
        await sleep(interval)
