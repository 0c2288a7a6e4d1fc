"""Starting runs, following them, and judging them: the steps every scenario shares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from .clients import RunClient
from .traces import RunTrace
from .verdicts import Verdict, judge

HTTP_TIMEOUT = httpx.Timeout(30.0)
"""Longer than the stream's 15 s keep-alive pings: a quiet stream is not a timeout; `hang_seconds` is."""


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=httpx.Limits(max_connections=400, max_keepalive_connections=100))


def numbered(tokens: int, delay_ms: float = 20, *, arithmetic: str = "", stall: float = 0) -> str:
    """A scripted task: `tokens` numbered tokens (" 1 2 3 …"), after a calculator call when
    `arithmetic` is given, each model call stalling `stall` seconds first."""
    stall_part = f" stall={stall:g}" if stall else ""
    prefix = f"What is {arithmetic}? " if arithmetic else ""
    return f"{prefix}[[scripted tokens={tokens} delay_ms={delay_ms:g}{stall_part}]]"


async def start_all(client: RunClient, tasks: Iterable[str]) -> list[RunTrace]:
    return list(await asyncio.gather(*(client.start(task) for task in tasks)))


async def judge_run(client: RunClient, trace: RunTrace, reference_text: str | None) -> Verdict:
    if trace.run_id is None:
        return judge(trace, [], None, reference_text)
    errors: list[str] = []
    status = await client.status(trace.run_id, errors)
    log = await client.read_log(trace.run_id, errors)
    verdict = judge(trace, log, status, reference_text)
    if errors:
        verdict.client_errors += len(errors)
        verdict.problems.extend(f"reading the run back: {e}" for e in errors[:3])
    return verdict


async def judge_all(client: RunClient, traces: list[RunTrace], references: dict[str, str]) -> list[Verdict]:
    return list(await asyncio.gather(*(judge_run(client, t, references.get(t.task)) for t in traces)))


async def reference_texts(client: RunClient, tasks: Iterable[str]) -> tuple[dict[str, str], list[Verdict]]:
    """One uninterrupted run of each task on this stack: its text is what a faulted run must show."""
    distinct = sorted(set(tasks))
    traces = await start_all(client, distinct)
    await asyncio.gather(*(client.follow(trace) for trace in traces))
    verdicts = await judge_all(client, traces, {})
    return {t.task: t.text for t, v in zip(traces, verdicts, strict=True) if v.outcome == "completed"}, verdicts
