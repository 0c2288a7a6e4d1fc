"""Injected DynamoDB faults: the stack runs with `DYNAMODB_FAULTS` (throttling and 5xx injected by
devstack's fault proxy between the stack and moto); what must a client see of them? Nothing: no
error answer, no `error` chunk, no lost or duplicated chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .clients import RunClient
from .runs import http_client, judge_all, numbered, start_all
from .scenario import ScenarioResult
from .sizes import SuiteSize
from .stack import FaultStack

FAULTS = "throttle=0.10,error=0.01,conflict=0.02"


def stack_environment(size: SuiteSize) -> dict[str, str]:
    return {"DYNAMODB_FAULTS": FAULTS, "DYNAMODB_FAULTS_SEED": str(size.seed)}


async def run(stack: FaultStack, size: SuiteSize, progress: Callable[[str], None]) -> ScenarioResult:
    result = ScenarioResult(f"DynamoDB faults ({FAULTS})", errors_are_misses=True)
    if stack.faults_url is None:
        result.skipped = "no fault proxy: the stack printed no `FAULTS <url>` line with DYNAMODB_FAULTS set"
        result.notes.append(result.skipped)
        return result
    tasks = [numbered(size.tokens // 2, arithmetic="17 * 23" if i % 2 else "") for i in range(size.runs)]
    async with http_client() as http:
        client = RunClient(stack.base_url, http, hang_seconds=size.hang_seconds)
        traces = await start_all(client, tasks)
        await asyncio.gather(*(client.follow(trace) for trace in traces))
        # The expected text is known without a reference run (which would see faults too).
        references = {task: "".join(f" {n}" for n in range(1, size.tokens // 2 + 1)) for task in tasks}
        for verdict in await judge_all(client, traces, references):
            result.add(verdict)
    counters = stack.fault_counters()
    result.details["fault_counters"] = counters
    result.notes.append(f"proxy counters: {counters}")
    progress(f"  {size.runs} runs under injected DynamoDB faults")
    return result
