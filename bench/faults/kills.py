"""Interrupted runs: the worker process is SIGKILLed at a random moment while runs are in flight.

Each round starts `runs` runs (long numbered answers; some call the calculator first, some stall
before each model call), kills the worker at a moment drawn uniformly from a window in which they
stream, and waits for every run to end or hang. devstack starts a new worker; the runs the dead
one held must be carried on by it from their logs.

Recovery time, per run in flight at the kill that went on to complete: the arrival at the client of
the first chunk written after the kill, minus the kill's time (write times come from the table,
read past any proxy); for a run that failed instead, the same time is noted as the time to its
clean failure. Where
each run was at the kill is read the same way: before its first chunk, mid-text, between steps, or
mid-tool (its `tool_use` written, its `tool_result` not); and whether a chunk write had landed in
the 10 ms before the kill (a put whose acknowledgement the worker may not have had).

To aim kills between a write and its acknowledgement rather than hope for them, the stack reaches
moto through devstack's fault proxy with `delayed_ack`: 20% of DynamoDB writes commit at once and are
answered half a second later. Just before each kill the suite reads how many such answers the proxy
holds: writes committed that the dying worker never heard of.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.stack import ORG

from .clients import RunClient
from .runs import http_client, judge_all, numbered, reference_texts, start_all
from .scenario import ScenarioResult
from .sizes import SuiteSize
from .stack import FaultStack
from .traces import RunTrace

MIN_SECONDS_BETWEEN_KILLS = 12.5
"""devstack stops the stack when its worker dies more than 5 times in 60 s."""
JUST_AFTER_A_PUT_SECONDS = 0.010
DELAYED_ACKS = "delayed_ack=0.2"


def stack_environment() -> dict[str, str]:
    return {"DYNAMODB_FAULTS": DELAYED_ACKS}


def kill_tasks(size: SuiteSize) -> list[str]:
    return [numbered(size.tokens), numbered(size.tokens, arithmetic="17 * 23"),
            numbered(size.tokens, arithmetic="6 * 7", stall=1)]


def _phase(chunks_before: list[Any]) -> str:
    kinds = [c.chunk.type for c in chunks_before]
    if not kinds:
        return "before the first chunk"
    if kinds[-1] in ("end",):
        return "ended"
    if kinds.count("tool_use") > kinds.count("tool_result"):
        return "mid-tool"
    return "mid-text" if kinds[-1] == "text" else "between steps"


def _recovery(stack: FaultStack, trace: RunTrace, killed_at: float) -> tuple[float | None, str, bool]:
    """(seconds from the kill to the arrival of the first chunk written after it, the run's phase at
    the kill, whether a chunk was written just before the kill)."""
    assert trace.run_id is not None
    chunks = stack.store().read_chunks(ORG, trace.run_id, after=0, limit=100_000, consistent=True)
    before = [c for c in chunks if c.written_at < killed_at]
    after = [c for c in chunks if c.written_at >= killed_at]
    just_after_put = bool(before) and killed_at - before[-1].written_at <= JUST_AFTER_A_PUT_SECONDS
    arrival = trace.first_arrival(after[0].seq) if after else None
    return (None if arrival is None else arrival - killed_at), _phase(before), just_after_put


async def _round(stack: FaultStack, client: RunClient, size: SuiteSize, rng: random.Random,
                 result: ScenarioResult, references: dict[str, str], number: int) -> float | None:
    tasks = [kill_tasks(size)[i % 3] for i in range(size.runs)]
    traces = await start_all(client, tasks)
    followers = [asyncio.create_task(client.follow(trace)) for trace in traces]
    answer_seconds = size.tokens * 0.020
    await asyncio.sleep(rng.uniform(0.3, 0.7 * answer_seconds))
    counters = await asyncio.to_thread(stack.fault_counters) or {}
    killed = await asyncio.to_thread(stack.kill_worker)
    in_flight = [t for t in traces if t.ended_at is None and t.run_id is not None]
    await asyncio.gather(*followers)
    for verdict in await judge_all(client, traces, references):
        result.add(verdict)
    if killed is None:
        result.notes.append(f"round {number}: no worker process to kill")
        return None
    phases: Counter[str] = Counter()
    just_after_put = 0
    outcomes = {v.run_id: v.outcome for v in result.verdicts}
    for trace in in_flight:
        seconds, phase, after_put = await asyncio.to_thread(_recovery, stack, trace, killed[1])
        phases[phase] += 1
        just_after_put += after_put
        if seconds is None:
            continue
        if outcomes.get(trace.run_id) == "completed":
            result.recovery_seconds.append(seconds)
        elif outcomes.get(trace.run_id) == "failed_cleanly":
            result.details.setdefault("seconds_to_clean_failure", []).append(round(seconds, 1))
    result.details.setdefault("rounds", []).append({
        "round": number, "in_flight_at_kill": len(in_flight), "phase_at_kill": dict(phases),
        "killed_within_10ms_of_a_put": just_after_put,
        "writes_awaiting_their_answer_at_kill": counters.get("acks_awaited", 0),
        "recovering_notices": sum(any(p == "recovering" for p, _ in t.notices) for t in in_flight),
        "hung": sum(t.hung for t in traces), "traces": [t.summary() for t in traces],
    })
    return killed[1]


async def run(stack: FaultStack, size: SuiteSize, progress: Callable[[str], None]) -> ScenarioResult:
    result = ScenarioResult("interrupted runs (worker SIGKILL)")
    rng = random.Random(size.seed)
    async with http_client() as http:
        client = RunClient(stack.base_url, http, hang_seconds=size.hang_seconds)
        references, reference_verdicts = await reference_texts(client, kill_tasks(size))
        if len(references) < 3:
            result.notes.append(f"reference runs not all clean: {[v.problems for v in reference_verdicts]}")
        last_kill = 0.0
        for number in range(1, size.rounds + 1):
            await asyncio.sleep(max(0.0, last_kill + MIN_SECONDS_BETWEEN_KILLS - time.time()))
            began = time.monotonic()
            killed_at = await _round(stack, client, size, rng, result, references, number)
            last_kill = killed_at or last_kill
            progress(f"  kill round {number}/{size.rounds}: {result.completed} completed, {result.failed_cleanly} "
                     f"failed cleanly, {result.hung} hung so far ({time.monotonic() - began:.0f}s)")
    phases: Counter[str] = Counter()
    for round_ in result.details.get("rounds", []):
        phases.update(round_["phase_at_kill"])
    if phases:
        result.notes.append("at the kill: " + ", ".join(f"{n} {p}" for p, n in phases.most_common()))
    failures = result.details.get("seconds_to_clean_failure")
    if failures:
        result.notes.append(f"kill → the error chunk of a run that failed: {min(failures)}–{max(failures)} s")
    attempts = Counter(v.attempts for v in result.verdicts if v.attempts is not None)
    if attempts:
        result.notes.append("workers per run: " + ", ".join(f"{n} run(s) {a}" for a, n in sorted(attempts.items())))
    noticed = sum(r["recovering_notices"] for r in result.details.get("rounds", []))
    result.notes.append(f"{noticed} run(s) in flight were told `recovering` by their stream")
    rounds = result.details.get("rounds", [])
    put_kills = sum(r["killed_within_10ms_of_a_put"] for r in rounds)
    result.notes.append(f"{put_kills} run(s) killed ≤10 ms after a chunk put")
    awaited = [r["writes_awaiting_their_answer_at_kill"] for r in rounds]
    result.notes.append(f"writes committed but not yet answered when the worker was killed: {sum(awaited)} "
                        f"(by round: {awaited})")
    return result
