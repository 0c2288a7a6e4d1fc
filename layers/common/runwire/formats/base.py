"""The one interface every wire format implements.

A format is a factory of per-stream encoders: an encoder may keep state for one response (the
AI SDK protocol opens and closes text blocks; seed 002 needs a tool's name for its result), so a
new one is made per response. Encoders are pure: stored chunks in, bytes out.

Every format must be able to render any run from its stored chunks alone (`?format=NAME` works
on any stream), and every format ends a run with exactly one terminal event of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..core.models import Chunk, ErrorChunk, MultitaskStrategy, RunError, RunRecord, StoredChunk, Usage, UsageChunk

SURFACE_MULTITASK_STRATEGY: MultitaskStrategy = "enqueue"
"""The client surfaces' clients (the AI SDK, chat events, content/is_final) cannot choose a
`multitaskStrategy`: a message sent while its conversation's run is still queued or running waits
its turn, as a chat app's next message would, rather than being refused."""


@dataclass(frozen=True)
class StreamContext:
    run: RunRecord
    """The run as it was when the stream opened (its status may have moved on since)."""
    resumed_after: int = 0
    """The seq the client resumes after (0: from the start)."""

    @property
    def message_id(self) -> str:
        """A stable id for the assistant message this run produces."""
        return "msg_" + self.run.run_id.removeprefix("run_")

    @property
    def conversation_id(self) -> str | None:
        return self.run.request.conversation_id


class RunTally:
    """What a format's terminal event reports, gathered as the chunks go by: the run's usage and
    error. A stream resumed after them still knows them, from the run record."""

    def __init__(self, run: RunRecord) -> None:
        self._run = run
        self._usage: UsageChunk | None = None
        self._error: ErrorChunk | None = None

    def observe(self, chunk: Chunk) -> None:
        if isinstance(chunk, UsageChunk):
            self._usage = chunk
        elif isinstance(chunk, ErrorChunk):
            self._error = chunk

    @property
    def usage(self) -> UsageChunk | Usage | None:
        return self._usage or self._run.usage

    @property
    def error(self) -> ErrorChunk | RunError | None:
        return self._error or self._run.error


class StreamEncoder(Protocol):
    def open(self) -> bytes:
        """Bytes sent before the first chunk (may be empty)."""

    def encode(self, stored: StoredChunk) -> bytes:
        """The bytes for one stored chunk (may be empty for chunks this format does not show)."""

    def ping(self) -> bytes:
        """A keep-alive the client ignores."""

    def recovering(self) -> bytes:
        """The run's worker stopped and another will carry the run on (a ping, where the format
        has no way to say so)."""

    @property
    def finished(self) -> bool:
        """This response is complete: after the run's end, or (for a format whose clients cannot
        stay open while a run waits for them) after the run asked its client to act."""


class StreamFormat(Protocol):
    name: str
    media_type: str

    def headers(self, context: StreamContext) -> dict[str, str]:
        """Extra response headers this format's clients expect."""

    def encoder(self, context: StreamContext) -> StreamEncoder: ...
