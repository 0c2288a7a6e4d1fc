"""Turning a model's token deltas into few, numbered chunk writes.

A model emits a delta every few tens of milliseconds; writing each one would cost a DynamoDB
write per token. `TextCoalescer` writes at most once per window (and at a size cap). It flushes on
a delta's arrival once the window since the last write has passed, so the newest token of each
batch waits nothing; the first delta after a quiet spell is written at once, so time to first
token pays no window. A timer flushes what is left when the model pauses (`deadline`). `ChunkWriter` numbers chunks 1, 2, 3… and writes each with a conditional put, so a seq is
written at most once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConditionFailedError, LeaseLostError
from .models import Chunk, StoredChunk
from .ports import RunStore


@dataclass
class CoalescingPolicy:
    window_seconds: float = 0.1
    max_chars: int = 2000


class TextCoalescer:
    def __init__(self, policy: CoalescingPolicy) -> None:
        self._policy = policy
        self._buffer: list[str] = []
        self._size = 0
        self._last_flush = float("-inf")

    @property
    def pending(self) -> bool:
        return bool(self._buffer)

    def add(self, text: str, now: float) -> str | None:
        """Buffer `text`; return the text to write now, if any."""
        if not text:
            return None
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= self._policy.max_chars or now - self._last_flush >= self._policy.window_seconds - 1e-6:
            return self._flush(now)
        return None

    def deadline(self) -> float | None:
        """When buffered text must be written even if no delta arrives (the model paused), or None.

        Half a window past the window's end: a steady stream flushes on arrival before that."""
        if not self._buffer:
            return None
        return self._last_flush + self._policy.window_seconds * 1.5

    def flush_due(self, now: float) -> str | None:
        deadline = self.deadline()
        if deadline is not None and now >= deadline:
            return self._flush(now)
        return None

    def drain(self, now: float) -> str | None:
        """Everything buffered, regardless of the window (before a tool call or the end)."""
        return self._flush(now) if self._buffer else None

    def _flush(self, now: float) -> str:
        text = "".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        self._last_flush = now
        return text


class ChunkWriter:
    """Numbers and writes one run's chunks. The worker that claimed the run is the only writer: with
    `owner`, each write lands only while that claim holds the run (LeaseLostError otherwise)."""

    def __init__(
        self, store: RunStore, org_id: str, run_id: str, *, expires_at: int, last_seq: int = 0, owner: str | None = None
    ) -> None:
        self._store = store
        self._org_id = org_id
        self._run_id = run_id
        self._expires_at = expires_at
        self._owner = owner
        self.last_seq = last_seq
        self.writes = 0

    def write(self, chunk: Chunk) -> StoredChunk:
        seq = self.last_seq + 1
        try:
            stored = self._store.append_chunk(
                self._org_id, self._run_id, seq, chunk, expires_at=self._expires_at, owner=self._owner
            )
        except LeaseLostError:
            raise
        except ConditionFailedError:
            # The seq is taken. If by this very chunk (the put committed, its answer was lost and the
            # SDK retried it), the write succeeded; anything else is a second writer: give up.
            written = self._store.read_chunks(self._org_id, self._run_id, after=seq - 1, limit=1, consistent=True)
            if not written or written[0].seq != seq or written[0].chunk != chunk:
                raise
            stored = written[0]
        self.last_seq = stored.seq
        self.writes += 1
        return stored

    @property
    def next_seq(self) -> int:
        return self.last_seq + 1
