"""The benchmark's clients: two-step runs on the pipeline, one-request runs on the baseline.

The scripted model stamps each token with the epoch milliseconds at which it emitted it
(`[[scripted tokens=100 delay_ms=20 stamp=1]]` → " 1@1732…", " 2@1732…"); a client notes the
epoch time at which each SSE event is parsed. Both run on this machine, on one clock, so
`received − emitted` is each token's delivery lag. A run is an error when it fails, times out,
or does not receive tokens 1..N each exactly once, in order, followed by the `end` event.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import aconnect_sse

_STAMPED_TOKEN = re.compile(r"(\d+)@(\d+)")


def directive(tokens: int, delay_ms: float, stall: float | None = None) -> str:
    stall_part = f" stall={stall:g}" if stall else ""
    return f"[[scripted{stall_part} tokens={tokens} delay_ms={delay_ms:g} stamp=1]]"


@dataclass
class Token:
    n: int
    emitted: float
    """epoch seconds, stamped by the model (ms resolution)"""
    received: float
    """epoch seconds, when this client parsed the SSE event carrying it"""
    seq: int
    """the SSE id (the chunk's seq) that carried it"""

    @property
    def lag_ms(self) -> float:
        return (self.received - self.emitted) * 1000


@dataclass
class RunTrace:
    kind: str
    """`pipeline` (POST then GET stream) or `baseline` (one streaming request)"""
    expected_tokens: int
    run_id: str | None = None
    started: float = 0.0
    """when the client sent the POST (epoch seconds)"""
    accepted: float | None = None
    """pipeline: when the POST's 202 arrived"""
    stream_opened: float | None = None
    """when the stream request was sent"""
    ended: float | None = None
    """when the `end` event arrived"""
    tokens: list[Token] = field(default_factory=list)
    events: int = 0
    error: str | None = None

    @property
    def first_token(self) -> float | None:
        return self.tokens[0].received if self.tokens else None

    @property
    def ttft_ms(self) -> float | None:
        return (self.tokens[0].received - self.started) * 1000 if self.tokens else None

    @property
    def ok(self) -> bool:
        return self.error is None

    def check(self) -> None:
        """Every token 1..N exactly once, in order, then `end`; else record why not."""
        if self.error is not None:
            return
        numbers = [t.n for t in self.tokens]
        if numbers != list(range(1, self.expected_tokens + 1)):
            missing = sorted(set(range(1, self.expected_tokens + 1)) - set(numbers))
            duplicated = len(numbers) - len(set(numbers))
            self.error = (f"tokens out of order, lost or duplicated: {len(numbers)} received, "
                          f"{len(missing)} missing, {duplicated} duplicated")
        elif self.ended is None:
            self.error = "the stream closed without an end event"

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "run_id": self.run_id,
            "started": self.started,
            "accepted": self.accepted,
            "stream_opened": self.stream_opened,
            "first_token": self.first_token,
            "ended": self.ended,
            "tokens": len(self.tokens),
            "events": self.events,
            "error": self.error,
        }


def _read_tokens(trace: RunTrace, seq: int, data: str, received: float) -> None:
    chunk = json.loads(data)
    if chunk.get("type") == "text":
        for n, ms in _STAMPED_TOKEN.findall(chunk["text"]):
            trace.tokens.append(Token(int(n), int(ms) / 1000, received, seq))


async def _follow(trace: RunTrace, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> None:
    async with aconnect_sse(client, method, url, **kwargs) as source:
        if source.response.status_code != 200:
            trace.error = f"{method} {url.rsplit('/', 2)[-2:]} answered {source.response.status_code}"
            return
        async for event in source.aiter_sse():
            received = time.time()
            trace.events += 1
            if event.event == "end":
                trace.ended = received
                return
            if event.event == "data":
                _read_tokens(trace, int(event.id or 0), event.data, received)


async def two_step_run(client: httpx.AsyncClient, base_url: str, headers: dict[str, str], task: str,
                       expected_tokens: int, timeout: float) -> RunTrace:
    """POST /v1/runs, then GET its stream to the end: seed 000's two-step flow."""
    trace = RunTrace("pipeline", expected_tokens)

    async def run() -> None:
        trace.started = time.time()
        response = await client.post(f"{base_url}/v1/runs", json={"task": task}, headers=headers)
        trace.accepted = time.time()
        if response.status_code != 202:
            trace.error = f"POST /v1/runs answered {response.status_code}: {response.text[:200]}"
            return
        trace.run_id = response.json()["runId"]
        trace.stream_opened = time.time()
        await _follow(trace, client, "GET", f"{base_url}/v1/runs/{trace.run_id}/stream", headers=headers)

    await _bounded(trace, run(), timeout)
    return trace


async def baseline_run(client: httpx.AsyncClient, base_url: str, headers: dict[str, str], task: str,
                       expected_tokens: int, timeout: float) -> RunTrace:
    """One request that runs the model and streams its tokens straight back."""
    trace = RunTrace("baseline", expected_tokens)

    async def run() -> None:
        trace.started = trace.stream_opened = time.time()
        await _follow(trace, client, "POST", f"{base_url}/v1/runs/stream", json={"task": task}, headers=headers)

    await _bounded(trace, run(), timeout)
    return trace


async def _bounded(trace: RunTrace, work: Any, timeout: float) -> None:
    try:
        await asyncio.wait_for(work, timeout)
    except TimeoutError:
        trace.error = f"timed out after {timeout:g}s ({len(trace.tokens)} tokens received)"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        trace.error = f"{type(exc).__name__}: {exc}"[:300]
    trace.check()


class LoopLagMonitor:
    """How late this process's event loop wakes up: the clients' own share of a measured lag."""

    def __init__(self, interval: float = 0.01) -> None:
        self._interval = interval
        self.samples_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self._interval)
            self.samples_ms.append((time.perf_counter() - before - self._interval) * 1000)

    def __enter__(self) -> LoopLagMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


def http_client(connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, connect=10.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
