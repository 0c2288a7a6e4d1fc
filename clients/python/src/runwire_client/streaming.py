"""Following a run's stream to its `end`, whatever the network does.

- **Decoding**: httpx-sse's decoder, which follows the WHATWG SSE parsing rules (fields, comments,
  multi-line data, `id`); each event becomes a typed chunk (`chunks.parse_event`).
- **Resuming**: a connection that drops, or closes before `end`, is opened again with
  `Last-Event-ID: <last seq seen>`, so the server replays exactly what came after (docs/api.md,
  "two-step"). A connection that carried anything (an event, or only pings) and then closed is
  alive: the deployed stream function ends every response at its timeout (300 s) while a run may
  wait an hour for approval, so it is opened again after `reconnect_backoff_seconds` and counts as
  no failure. A connection that fails to open, or drops before its first byte, is a failure:
  reconnects back off (0.5 s, doubling, at most 8 s); after `max_reconnects` failures in a row,
  `StreamError`. An event at or before the last seq seen is dropped, so a resumed stream never
  yields a chunk twice.
- **Events outside the log**: `{"type":"status",…}` has no id of its own (httpx-sse, as the spec
  says, repeats the last id seen): it is yielded with `seq=None` and never taken for a repeat. A
  ping (`: ping`) after the first id comes out of the decoder as an event with no data: skipped.
- **Falling back to long-polling**: the server pings every 15 s while a run is idle, so a stream
  with no byte for `stall_seconds` (20 by default) is stuck. The client then reads the run: if its
  `lastSeq` is past the last event seen, something between us and the server is buffering the
  stream (a proxy that holds `text/event-stream` bodies), and the rest of the run is read with
  `GET /v1/runs/{id}/events?after=N&wait=S` instead; otherwise it reconnects and goes on streaming.
- **Server trouble**: a 5xx on (re)connecting (after the 429/503 retries of every request) counts
  as a drop; a 4xx is raised (`NotFoundError` for a run that does not exist or has expired).
- **Ending**: after the `end` chunk, or a `204` (the run ended at or before the resume point). The
  response is always closed, also when the caller stops iterating early (`close()`, `with`).

`RunStream` (sync) and `AsyncRunStream` follow the same steps; `StreamProgress` is what they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
from httpx_sse import EventSource, ServerSentEvent

from .chunks import AnyChunk, EndChunk, UnknownChunk, parse_chunk, parse_event
from .errors import APIConnectionError, StreamError
from .transport import raise_for_error, send, send_async

if TYPE_CHECKING:
    from .client import AsyncRunwire, Runwire

Outcome = Literal["ended", "closed", "dropped", "stalled"]
"""How one connection ended: `closed` after carrying something (alive), `dropped` before its first byte."""


@dataclass(frozen=True)
class StreamOptions:
    max_reconnects: int = 5
    """Failed connections in a row (none of their bytes arrived) before `StreamError`."""
    reconnect_backoff_seconds: float = 0.5
    """The first wait before a reconnect; it doubles on each one in a row, up to 8 s."""
    stall_seconds: float = 20.0
    """No byte for this long (the server pings every 15 s): check whether the run moved on without us."""
    poll_wait_seconds: int = 20
    """The long-poll's `wait` once the stream has fallen back to polling (the server allows up to 20)."""


class StreamProgress:
    """Where a reader is in a run's log, and what it does next: the part the sync and async readers share."""

    def __init__(self, run_id: str, after: int | None, options: StreamOptions) -> None:
        self.run_id = run_id
        self.options = options
        self.last_seq: int | None = after
        """The last event seen (the next `Last-Event-ID`); None before the first one."""
        self.mode: Literal["stream", "poll"] = "stream"
        """`poll` once the stream was found buffered: the rest is read with the events endpoint."""
        self.reconnects = 0
        """Connections opened again after a drop or a stall (all of them, for a caller's curiosity)."""
        self.failures_in_a_row = 0
        self.ended = False

    def resume_headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last_seq is not None:
            headers["Last-Event-ID"] = str(self.last_seq)
        return headers

    def accept(self, chunk: AnyChunk) -> bool:
        """Whether to yield `chunk`: not if it was seen already (a replay overlapping what we have);
        a chunk outside the log (`seq=None`: `status`) always."""
        if chunk.seq is not None:
            if self.last_seq is not None and chunk.seq <= self.last_seq:
                return False
            self.last_seq = chunk.seq
        self.failures_in_a_row = 0
        if isinstance(chunk, EndChunk):
            self.ended = True
        return True

    def chunk_of(self, event: ServerSentEvent) -> AnyChunk | None:
        """The event as a chunk; None for an event with no data (a ping, once an id was seen)."""
        if not event.data:
            return None
        seq = int(event.id) if event.id and event.id.isdigit() else None
        try:
            data: Any = json.loads(event.data)
        except ValueError:
            return UnknownChunk.model_validate({"type": event.event or "unknown", "seq": seq, "raw": event.data})
        if not isinstance(data, dict):
            return UnknownChunk.model_validate({"type": event.event or "unknown", "seq": seq, "raw": data})
        if data.get("type") == "status":
            seq = None  # not part of the log: the id it carries is the previous event's
        return parse_event(event.event, data, seq) if event.event in ("data", "end") else parse_chunk(data, seq)

    def moved_on(self, last_seq_on_server: int) -> bool:
        """After a stall: the run has events we were not given, so the stream is being held back."""
        return last_seq_on_server > (self.last_seq or 0)

    def wait_after(self, outcome: Outcome) -> float:
        """The wait before opening the stream again after a connection that ended as `outcome`."""
        if outcome == "closed":  # alive (an event or a ping came): not a failure
            self.failures_in_a_row = 0
            return self.options.reconnect_backoff_seconds
        return self.next_backoff()

    def next_backoff(self) -> float:
        """Count a failed connection; the wait before the next one, or `StreamError` when spent."""
        self.failures_in_a_row += 1
        if self.failures_in_a_row > self.options.max_reconnects:
            raise StreamError(
                f"run {self.run_id}: the stream failed {self.failures_in_a_row} times in a row "
                f"(last event seen: {self.last_seq})"
            )
        return min(8.0, self.options.reconnect_backoff_seconds * 2 ** (self.failures_in_a_row - 1))

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(10.0, read=self.options.stall_seconds)


def closed_or_dropped(response: httpx.Response) -> Outcome:
    """A connection that ended before `end`: `closed` if any of its body arrived (events, pings)."""
    return "closed" if response.num_bytes_downloaded > 0 else "dropped"


class RunStream:
    """Iterate for the run's chunks, from after `after` to `end`. Use as a context manager, or `close()`."""

    def __init__(self, client: Runwire, run_id: str, after: int | None, options: StreamOptions) -> None:
        self._client = client
        self.progress = StreamProgress(run_id, after, options)
        self._chunks = self._follow()

    @property
    def run_id(self) -> str:
        return self.progress.run_id

    @property
    def last_seq(self) -> int | None:
        return self.progress.last_seq

    def __iter__(self) -> Iterator[AnyChunk]:
        return self._chunks

    def __next__(self) -> AnyChunk:
        return next(self._chunks)

    def __enter__(self) -> RunStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._chunks.close()

    def _follow(self) -> Generator[AnyChunk, None, None]:
        progress = self.progress
        while not progress.ended:
            if progress.mode == "poll":
                yield from self._poll()
                return
            outcome = yield from self._read_once()
            if outcome == "ended":
                return
            progress.reconnects += 1
            if outcome == "stalled":
                try:
                    if progress.moved_on(self._client.runs.get(progress.run_id).last_seq):
                        progress.mode = "poll"
                    continue  # idle but healthy: reconnect at once
                except APIConnectionError:
                    outcome = "dropped"  # the API is out of reach too: back off as after a drop
            time.sleep(progress.wait_after(outcome))

    def _read_once(self) -> Generator[AnyChunk, None, Outcome]:
        progress = self.progress
        client = self._client
        request = client.http.build_request(
            "GET", f"{client.config.stream_url}/v1/runs/{progress.run_id}/stream",
            headers={**client.config.headers(), **progress.resume_headers()}, timeout=progress.timeout(),
        )
        try:
            response = send(client.http, client.retry, request, stream=True)
        except APIConnectionError:
            return "dropped"
        try:
            if response.status_code == 204:
                return "ended"
            if response.status_code >= 500:
                return "dropped"  # e.g. a gateway's 502 while a function restarts: retried, bounded
            if not response.is_success:
                response.read()
                raise_for_error(response)
            for event in EventSource(response).iter_sse():
                chunk = progress.chunk_of(event)
                if chunk is not None and progress.accept(chunk):
                    yield chunk
                if progress.ended:
                    return "ended"
            return closed_or_dropped(response)  # before `end`: e.g. the function's timeout; resume
        except httpx.ReadTimeout:
            return "stalled"
        except httpx.TransportError:
            return closed_or_dropped(response)
        finally:
            response.close()

    def _poll(self) -> Generator[AnyChunk, None, None]:
        progress = self.progress
        while True:
            try:
                page = self._client.runs.events(
                    progress.run_id, after=progress.last_seq or 0, wait=progress.options.poll_wait_seconds
                )
            except APIConnectionError:
                time.sleep(progress.next_backoff())
                continue
            for chunk in page.events:
                if progress.accept(chunk):
                    yield chunk
            if page.done or progress.ended:
                return


class AsyncRunStream:
    """`RunStream` for asyncio: `async for chunk in stream`, `async with`, `await close()`."""

    def __init__(self, client: AsyncRunwire, run_id: str, after: int | None, options: StreamOptions) -> None:
        self._client = client
        self.progress = StreamProgress(run_id, after, options)
        self._chunks = self._follow()

    @property
    def run_id(self) -> str:
        return self.progress.run_id

    @property
    def last_seq(self) -> int | None:
        return self.progress.last_seq

    def __aiter__(self) -> AsyncIterator[AnyChunk]:
        return self._chunks

    async def __anext__(self) -> AnyChunk:
        return await self._chunks.__anext__()

    async def __aenter__(self) -> AsyncRunStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._chunks.aclose()

    async def _follow(self) -> AsyncGenerator[AnyChunk, None]:
        progress = self.progress
        while not progress.ended:
            if progress.mode == "poll":
                async with contextlib.aclosing(self._poll()) as polled:
                    async for chunk in polled:
                        yield chunk
                return
            outcome: list[Outcome] = []
            # aclosing: a caller's close() while a chunk is out closes this connection now, not
            # whenever the garbage collector finalizes the inner generator.
            async with contextlib.aclosing(self._read_once(outcome)) as chunks:
                async for chunk in chunks:
                    yield chunk
            ended_as: Outcome = outcome[0] if outcome else "dropped"
            if ended_as == "ended":
                return
            progress.reconnects += 1
            if ended_as == "stalled":
                try:
                    if progress.moved_on((await self._client.runs.get(progress.run_id)).last_seq):
                        progress.mode = "poll"
                    continue
                except APIConnectionError:
                    ended_as = "dropped"
            await asyncio.sleep(progress.wait_after(ended_as))

    async def _read_once(self, outcome: list[Outcome]) -> AsyncGenerator[AnyChunk, None]:
        """Yields the chunks of one connection; appends how it ended to `outcome` (async generators return nothing)."""
        progress = self.progress
        client = self._client
        request = client.http.build_request(
            "GET", f"{client.config.stream_url}/v1/runs/{progress.run_id}/stream",
            headers={**client.config.headers(), **progress.resume_headers()}, timeout=progress.timeout(),
        )
        try:
            response = await send_async(client.http, client.retry, request, stream=True)
        except APIConnectionError:
            outcome.append("dropped")
            return
        try:
            if response.status_code == 204:
                outcome.append("ended")
                return
            if response.status_code >= 500:
                outcome.append("dropped")
                return
            if not response.is_success:
                await response.aread()
                raise_for_error(response)
            events = EventSource(response).aiter_sse()
            try:
                async for event in events:
                    chunk = progress.chunk_of(event)
                    if chunk is not None and progress.accept(chunk):
                        yield chunk
                    if progress.ended:
                        outcome.append("ended")
                        return
            finally:
                await events.aclose()
            outcome.append(closed_or_dropped(response))
        except httpx.ReadTimeout:
            outcome.append("stalled")
        except httpx.TransportError:
            outcome.append(closed_or_dropped(response))
        finally:
            await response.aclose()

    async def _poll(self) -> AsyncGenerator[AnyChunk, None]:
        progress = self.progress
        while True:
            try:
                page = await self._client.runs.events(
                    progress.run_id, after=progress.last_seq or 0, wait=progress.options.poll_wait_seconds
                )
            except APIConnectionError:
                await asyncio.sleep(progress.next_backoff())
                continue
            for chunk in page.events:
                if progress.accept(chunk):
                    yield chunk
            if page.done or progress.ended:
                return
