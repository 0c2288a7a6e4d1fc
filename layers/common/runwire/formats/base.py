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

from ..core.models import RunRecord, StoredChunk


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


class StreamEncoder(Protocol):
    def open(self) -> bytes:
        """Bytes sent before the first chunk (may be empty)."""

    def encode(self, stored: StoredChunk) -> bytes:
        """The bytes for one stored chunk (may be empty for chunks this format does not show)."""

    def ping(self) -> bytes:
        """A keep-alive the client ignores."""


class StreamFormat(Protocol):
    name: str
    media_type: str

    def headers(self, context: StreamContext) -> dict[str, str]:
        """Extra response headers this format's clients expect."""

    def encoder(self, context: StreamContext) -> StreamEncoder: ...
