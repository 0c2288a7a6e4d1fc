"""What a stream carries besides the log, from a local SSE server, sync and async: an id-less
`status` event between numbered ones, pings after the first id, connections closed cleanly after
pings only (a run waiting long for approval), and a stream left early (review of issue 11, points 2,
4 and 5)."""

from __future__ import annotations

import httpx
import pytest

from runwire_client import AsyncRunwire, Runwire, StatusChunk, StreamOptions, TextChunk

from .network import ClosingCounter, SSEServer

PING = b": ping\n\n"
RECOVERING = b'event: data\ndata: {"type":"status","phase":"recovering"}\n\n'


def text(seq: int, words: str) -> bytes:
    return f'id: {seq}\nevent: data\ndata: {{"type":"text","text":"{words}"}}\n\n'.encode()


def end(seq: int) -> bytes:
    return f'id: {seq}\nevent: end\ndata: {{"status":"succeeded"}}\n\n'.encode()


RECOVERING_BETWEEN = text(1, "Hello") + PING + RECOVERING + PING + text(2, " world") + end(3)
FAST = StreamOptions(max_reconnects=2, reconnect_backoff_seconds=0.01)


def shown(chunks: list) -> list[tuple[str, int | None]]:
    return [(c.type, c.seq) for c in chunks]


def test_sync_status_event_between_numbered_ones_is_yielded_without_a_seq():
    with SSEServer([RECOVERING_BETWEEN]) as server, Runwire(base_url=server.url, token="t", stream_options=FAST) as client:
        chunks = list(client.runs.stream("run_1"))
    assert shown(chunks) == [("text", 1), ("status", None), ("text", 2), ("end", 3)], "no ping as a chunk"
    assert isinstance(chunks[1], StatusChunk) and chunks[1].phase == "recovering"


@pytest.mark.anyio
async def test_async_status_event_between_numbered_ones_is_yielded_without_a_seq():
    with SSEServer([RECOVERING_BETWEEN]) as server:
        async with AsyncRunwire(base_url=server.url, token="t", stream_options=FAST) as client:
            chunks = [chunk async for chunk in client.runs.stream("run_1")]
    assert shown(chunks) == [("text", 1), ("status", None), ("text", 2), ("end", 3)]


WAITING_AN_HOUR = [text(1, "Allow it?") + PING, PING, PING, PING, PING, text(2, "Done.") + end(3)]
"""The stream function closes each response at its timeout: five connections with pings only (more
than `max_reconnects`), then the answer comes."""


def test_sync_connections_closed_after_pings_are_not_failures():
    with SSEServer(WAITING_AN_HOUR) as server, Runwire(base_url=server.url, token="t", stream_options=FAST) as client:
        chunks = list(client.runs.stream("run_1"))
    assert shown(chunks) == [("text", 1), ("text", 2), ("end", 3)]
    assert server.resume_ids == [None, "1", "1", "1", "1", "1"]


@pytest.mark.anyio
async def test_async_connections_closed_after_pings_are_not_failures():
    with SSEServer([PING, PING, PING, PING, text(1, "Done.") + end(2)]) as server:
        async with AsyncRunwire(base_url=server.url, token="t", stream_options=FAST) as client:
            chunks = [chunk async for chunk in client.runs.stream("run_1")]
    assert shown(chunks) == [("text", 1), ("end", 2)] and server.resume_ids == [None] * 5


@pytest.mark.anyio
async def test_async_stream_left_early_releases_its_connection_at_close():
    counter = ClosingCounter()
    with SSEServer([text(1, "one") + text(2, "two")], hold_open=True) as server:
        async with AsyncRunwire(base_url=server.url, token="t", http_client=httpx.AsyncClient(transport=counter)) as client:
            stream = client.runs.stream("run_1")
            async for chunk in stream:
                assert isinstance(chunk, TextChunk) and chunk.seq == 1
                break
            assert counter.open_responses == 1
            await stream.close()
            assert counter.open_responses == 0, "the response is closed by close(), not later by the GC"

