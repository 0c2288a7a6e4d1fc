"""Seed 000's format (`format=runwire`, the default): one SSE event per stored chunk.

    id: 3
    event: data
    data: {"type":"text","text":"Hi"}

and, last, `id: N` / `event: end` / `data: {"status":"succeeded"}`: how the run ended (`succeeded`,
`failed`, `cancelled` or `expired`), so a stream-only client can tell them apart. Seed 000 shows
`data: {}`; its clients only close on `end` and never read it, so they lose nothing. The id is the
chunk's seq, so a reconnecting EventSource sends `Last-Event-ID: N` and gets exactly the events after N.

While a run's worker is gone and the run waits for another to take it over, the reader says so
with an event that has no id (it is not a chunk of the log, and leaves `Last-Event-ID` alone):

    event: data
    data: {"type":"status","phase":"recovering"}
"""

from __future__ import annotations

import json

from ..core.models import EndChunk, StoredChunk
from .base import StreamContext
from .sse import PING, ServerSentEvent

RECOVERING_EVENT = ServerSentEvent(event="data", data='{"type":"status","phase":"recovering"}').encode()


def end_data(chunk: EndChunk) -> dict[str, str]:
    """What `event: end` carries: how the run ended."""
    return {"status": chunk.status.value}


def end_data_json(chunk: EndChunk) -> str:
    return json.dumps(end_data(chunk), separators=(",", ":"))


def encode_chunk_event(stored: StoredChunk) -> bytes:
    if isinstance(stored.chunk, EndChunk):
        return ServerSentEvent(id=str(stored.seq), event="end", data=end_data_json(stored.chunk)).encode()
    return ServerSentEvent(id=str(stored.seq), event="data", data=stored.chunk.model_dump_json(by_alias=True)).encode()


class RunwireEventsEncoder:
    def __init__(self) -> None:
        self.finished = False

    def open(self) -> bytes:
        return b""

    def encode(self, stored: StoredChunk) -> bytes:
        self.finished = isinstance(stored.chunk, EndChunk)
        return encode_chunk_event(stored)

    def ping(self) -> bytes:
        return PING

    def recovering(self) -> bytes:
        return RECOVERING_EVENT


class RunwireEventsFormat:
    name = "runwire"
    media_type = "text/event-stream"

    def headers(self, context: StreamContext) -> dict[str, str]:
        return {}

    def encoder(self, context: StreamContext) -> RunwireEventsEncoder:
        return RunwireEventsEncoder()
