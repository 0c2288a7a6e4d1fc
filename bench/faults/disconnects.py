"""Random disconnect/resume cycles: clients drop their own connections and resume.

`runs` runs stream long numbered answers at once; each follower cuts its connection after a random
time or a random number of events, whichever comes first, and resumes from the last id it saw,
alternately with `Last-Event-ID` and `?after=`, until it has used its share of `cycles`. A run
that ends before its share is used spends the rest re-reading itself from random points (each
re-read must give exactly the events after that point, as first received).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from .clients import CutPlan, RunClient
from .runs import http_client, judge_all, numbered, reference_texts, start_all
from .scenario import ScenarioResult
from .sizes import SuiteSize
from .stack import FaultStack
from .traces import RunTrace

TOKEN_DELAY_MS = 20
MIN_MEAN_CUT_SECONDS = 0.05


def _plans(size: SuiteSize) -> list[CutPlan]:
    share, extra = divmod(size.cycles, size.runs)
    answer_seconds = size.resume_tokens * TOKEN_DELAY_MS / 1000
    plans = []
    for index in range(size.runs):
        quota = share + (index < extra)
        mean = max(MIN_MEAN_CUT_SECONDS, answer_seconds / (1.5 * max(1, quota)))
        plans.append(CutPlan(random.Random(size.seed * 1000 + index), quota, mean))
    return plans


async def _use_up(client: RunClient, trace: RunTrace, plan: CutPlan) -> dict[str, int]:
    totals = {"lost": 0, "duplicated": 0, "out_of_order": 0}
    while plan.remaining > 0 and trace.ended_at is not None:
        mode = plan.next_mode
        counts = await client.replay(trace, plan.rng, mode)
        plan.by_mode[mode] += 1
        plan.used += 1
        for key, value in counts.items():
            totals[key] += value
    return totals


async def run(stack: FaultStack, size: SuiteSize, progress: Callable[[str], None]) -> ScenarioResult:
    result = ScenarioResult("disconnect/resume cycles", errors_are_misses=True)
    task = numbered(size.resume_tokens, TOKEN_DELAY_MS)
    async with http_client() as http:
        client = RunClient(stack.base_url, http, hang_seconds=size.hang_seconds)
        references, _ = await reference_texts(client, [task])
        traces = await start_all(client, [task] * size.runs)
        plans = _plans(size)
        await asyncio.gather(*(client.follow(t, p) for t, p in zip(traces, plans, strict=True)))
        live = sum(p.used for p in plans)
        replayed = await asyncio.gather(*(_use_up(client, t, p) for t, p in zip(traces, plans, strict=True)))
        verdicts = await judge_all(client, traces, references)
    for verdict, counts in zip(verdicts, replayed, strict=True):
        verdict.lost += counts["lost"]
        verdict.duplicated += counts["duplicated"]
        verdict.out_of_order += counts["out_of_order"]
        result.add(verdict)
    cycles = sum(p.used for p in plans)
    by_mode = {mode: sum(p.by_mode[mode] for p in plans) for mode in ("last-event-id", "after")}
    result.details.update({"cycles": cycles, "live_cycles": live, "replay_cycles": cycles - live, "by_mode": by_mode,
                           "traces": [t.summary() for t in traces]})
    result.notes.append(f"{cycles} cycles ({live} mid-run, {cycles - live} re-reads after the end); "
                        f"Last-Event-ID {by_mode['last-event-id']}, ?after= {by_mode['after']}")
    if task not in references:
        result.notes.append("the reference run was not clean")
    progress(f"  {cycles} disconnect/resume cycles over {size.runs} runs")
    return result
