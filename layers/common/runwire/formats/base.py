"""The one interface every wire format implements.

A format is a factory of per-stream encoders: an encoder may keep state for one response (the
AI SDK protocol opens and closes text blocks), so a new one is made per stream.
"""

from __future__ import annotations

from typing import Protocol

from ..core.models import StoredChunk


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

    def headers(self) -> dict[str, str]:
        """Extra response headers this format's clients expect."""

    def encoder(self) -> StreamEncoder: ...
