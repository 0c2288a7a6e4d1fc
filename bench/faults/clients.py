"""The suite's client: starts runs, follows their streams (resuming as EventSource does), cuts its
own connections on a plan, re-reads finished runs from random points, and reads a run's whole log.

Every event is recorded with its id, chunk and arrival time (`traces.RunTrace`); everything a
client would treat as an error (a non-2xx answer, a connection it did not drop itself, an `error`
chunk) is recorded as a client-visible error. A stream that shows no event for `hang_seconds`
without having ended is given up on and marked hung: pings keep a connection open but are not
progress.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from bench.stack import auth_headers

from .traces import Received, RunTrace

STATUS_NOTICE = "status"
"""`{"type":"status","phase":"recovering"}`: the stream's notice that the run is between workers. It
has no id of its own (it is not in the log); httpx-sse, as the SSE spec says, gives it the last id
seen, so it is told apart by its type (docs/api.md)."""
RETRY_PAUSE_SECONDS = 0.5
MAX_REQUEST_ATTEMPTS = 6


@dataclass
class CutPlan:
    """When a follower drops its own connection: after a random time or a random number of events,
    whichever comes first, `quota` times; resuming alternately with `Last-Event-ID` and `?after=`."""

    rng: random.Random
    quota: int
    mean_seconds: float
    max_events: int = 6
    used: int = 0
    by_mode: dict[str, int] = field(default_factory=lambda: {"last-event-id": 0, "after": 0})

    @property
    def remaining(self) -> int:
        return self.quota - self.used

    def next_delay(self) -> float:
        return self.rng.uniform(0.0, 2 * self.mean_seconds)

    def next_event_count(self) -> int:
        return self.rng.randint(1, self.max_events)

    @property
    def next_mode(self) -> str:
        return "after" if self.used % 2 else "last-event-id"


def _resume_request(url: str, after: int, mode: str) -> tuple[str, dict[str, str]]:
    headers = auth_headers()
    if after <= 0:
        return url, headers
    if mode == "after":
        return f"{url}{'&' if '?' in url else '?'}after={after}", headers
    return url, {**headers, "Last-Event-ID": str(after)}


def _parse(event: ServerSentEvent) -> tuple[int, str, dict[str, Any]] | None:
    """(seq, event name, chunk), or None for what is not an event. httpx-sse dispatches an event
    for the blank line after a `: ping` comment, with the last id and no data; the SSE spec does
    not (an empty data buffer dispatches nothing), and neither does EventSource."""
    if not event.id or not event.data:
        return None
    data = json.loads(event.data) if event.data else {}
    return int(event.id), event.event, data


class RunClient:
    def __init__(self, base_url: str, http: httpx.AsyncClient, *, hang_seconds: float) -> None:
        self.base_url = base_url
        self.http = http
        self.hang_seconds = hang_seconds

    # --- requests ---------------------------------------------------------------------------------
    async def _request(self, errors: list[str], method: str, path: str, ok: tuple[int, ...] = (200,),
                       **kwargs: Any) -> httpx.Response | None:
        """The request, retried (as a client would) after any non-`ok` answer or broken connection;
        each such answer is a client-visible error."""
        for _ in range(MAX_REQUEST_ATTEMPTS):
            try:
                response = await self.http.request(method, f"{self.base_url}{path}", headers=auth_headers(), **kwargs)
            except httpx.TransportError as exc:
                errors.append(f"{method} {path.split('?')[0]}: {type(exc).__name__}")
            else:
                if response.status_code in ok:
                    return response
                errors.append(f"{method} {path.split('?')[0]}: {response.status_code} {response.text[:120]}")
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
        return None

    async def start(self, task: str, **body: Any) -> RunTrace:
        trace = RunTrace(task=task, started_at=time.time())
        response = await self._request(trace.client_errors, "POST", "/v1/runs", ok=(202,), json={"task": task, **body})
        if response is not None:
            started = response.json()
            trace.run_id, trace.stream_url = started["runId"], started["streamUrl"]
        return trace

    async def status(self, run_id: str, errors: list[str]) -> dict[str, Any] | None:
        response = await self._request(errors, "GET", f"/v1/runs/{run_id}")
        return None if response is None else dict(response.json())

    async def read_log(self, run_id: str, errors: list[str]) -> list[dict[str, Any]]:
        """Every event of the run, from a fresh read of the poll endpoint (`?after=0`, paged)."""
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            response = await self._request(errors, "GET", f"/v1/runs/{run_id}/events?after={after}")
            if response is None:
                return events
            page = response.json()
            events.extend(page["events"])
            if page["done"] or not page["events"]:
                return events
            after = page["lastSeq"]

    # --- following a stream -------------------------------------------------------------------------
    async def follow(self, trace: RunTrace, plan: CutPlan | None = None) -> None:
        """Read the run's stream to its `end`, resuming after every dropped connection."""
        if trace.stream_url is None:
            return
        loop = asyncio.get_running_loop()
        mode = "last-event-id"
        while trace.ended_at is None:
            idle_deadline = loop.time() + self.hang_seconds - (time.time() - trace.last_event_at)
            if loop.time() >= idle_deadline:
                trace.hung = True
                return
            cutting = plan is not None and plan.remaining > 0
            cut_deadline = loop.time() + plan.next_delay() if plan is not None and cutting else None
            cut_events = plan.next_event_count() if plan is not None and cutting else None
            cut = await self._connection(trace, mode, idle_deadline, cut_deadline, cut_events)
            if cut and plan is not None:
                plan.used += 1
                trace.cuts += 1
                mode = plan.next_mode
                plan.by_mode[mode] += 1

    async def _connection(self, trace: RunTrace, mode: str, idle_deadline: float, cut_deadline: float | None,
                          cut_events: int | None) -> bool:
        """One stream connection; True if the client cut it on purpose (a resume cycle)."""
        assert trace.stream_url is not None
        loop = asyncio.get_running_loop()
        url, headers = _resume_request(trace.stream_url, trace.last_seq, mode)
        trace.connections += 1
        connection = trace.connections
        seen = 0
        try:
            async with asyncio.timeout_at(min(idle_deadline, cut_deadline or idle_deadline)) as watch:
                async with aconnect_sse(self.http, "GET", url, headers=headers) as source:
                    status = source.response.status_code
                    if status == 204:
                        if trace.ended_at is None:
                            trace.client_errors.append(f"204 after {trace.last_seq} before the end event")
                            trace.ended_at = time.time()
                        return False
                    if status != 200:
                        trace.client_errors.append(f"GET stream: {status} {(await source.response.aread())[:120]!r}")
                        await asyncio.sleep(RETRY_PAUSE_SECONDS)
                        return False
                    async for event in source.aiter_sse():
                        parsed = _parse(event)
                        if parsed is None:
                            continue
                        seq, name, data = parsed
                        now = time.time()
                        if data.get("type") == STATUS_NOTICE:
                            trace.notices.append((str(data.get("phase")), now))
                            continue
                        trace.received.append(Received(seq, name, data, now, connection))
                        if data.get("type") == "error":
                            trace.client_errors.append(f"error chunk: {data.get('code')}")
                        if name == "end":
                            trace.ended_at = now
                            return False
                        seen += 1
                        if cut_events is not None and seen >= cut_events:
                            return True
                        idle = loop.time() + self.hang_seconds
                        watch.reschedule(min(idle, cut_deadline or idle))
            trace.client_errors.append(f"the stream closed after {trace.last_seq} without an end event")
        except TimeoutError:
            return cut_deadline is not None and loop.time() >= cut_deadline
        except httpx.TransportError as exc:
            trace.client_errors.append(f"GET stream: {type(exc).__name__}")
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
        return False

    # --- re-reading a finished run ------------------------------------------------------------------
    async def replay(self, trace: RunTrace, rng: random.Random, mode: str) -> dict[str, int]:
        """Resume a finished run from a random point and read a few events: they must be exactly the
        ones after that point, as first received. Returns lost / duplicated / out-of-order counts."""
        counts = {"lost": 0, "duplicated": 0, "out_of_order": 0}
        first = {r.seq: r for r in reversed(trace.received)}
        if trace.stream_url is None or not first:
            return counts
        after = rng.randrange(0, max(first))
        wanted = rng.randint(1, 8)
        url, headers = _resume_request(trace.stream_url, after, mode)
        trace.replays += 1
        expected = after + 1
        try:
            async with asyncio.timeout(self.hang_seconds):
                async with aconnect_sse(self.http, "GET", url, headers=headers) as source:
                    if source.response.status_code != 200:
                        trace.client_errors.append(f"replay GET stream: {source.response.status_code}")
                        return counts
                    async for event in source.aiter_sse():
                        parsed = _parse(event)
                        if parsed is None:
                            continue
                        seq, name, data = parsed
                        if data.get("type") == STATUS_NOTICE:
                            continue
                        if seq != expected:
                            key = "lost" if seq > expected else ("duplicated" if seq in first else "out_of_order")
                            counts[key] += 1
                            trace.replay_problems.append(f"after={after}: expected {expected}, got {seq}")
                        elif seq in first and (first[seq].event, first[seq].data) != (name, data):
                            trace.replay_problems.append(f"after={after}: event {seq} differs from the first read")
                        expected = seq + 1
                        wanted -= 1
                        if name == "end" or wanted == 0:
                            break
        except (TimeoutError, httpx.TransportError) as exc:
            trace.client_errors.append(f"replay GET stream: {type(exc).__name__}")
        return counts
