"""Model faults: the stack runs with `MODEL_PROVIDER=anthropic` against a local Messages server
(`devstack.messages_server`, in this process), scripted with one fault per run:

| fault | scripted replies | expected |
| --- | --- | --- |
| overloaded_529 | 529 overloaded_error, then the answer | completed, the whole answer |
| rate_limited_429 | 429 with `retry-after: 1`, then the answer | completed, the whole answer, ≥ 1 s later |
| server_error_500 | 500 api_error, then the answer | completed, the whole answer |
| cut_mid_stream | the answer cut after 12 tokens, then its rest | completed, the whole answer once |
| cut_no_prefill | the same cut, for a model that refuses assistant prefill (400); the fallback's answer repeats the last 3 words shown before its rest | completed, the whole answer once (the repeat dropped) |
| stall_past_deadline | silence longer than MAX_RUN_SECONDS (each retry too) | expired cleanly, `run_timed_out` |

Runs go one at a time against one server (a fresh server per run would break the provider's
pooled connection: a harness fault, not a model fault); each run's replies are scripted just before
it, and any it left unused are used up afterwards, so the next run meets only its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from devstack.messages_server import MessagesServer, RecordedRequest, Reply

from .clients import RunClient
from .runs import http_client, judge_run
from .scenario import ScenarioResult
from .sizes import SuiteSize
from .stack import FaultStack
from .traces import RunTrace

MAX_RUN_SECONDS = 15
TOKEN_DELAY_SECONDS = 0.02
CUT_AFTER_TOKENS = 12
ANSWER = ("The harbour wall was built in three stages over forty years, each one longer than the last, "
          "and the town grew along it: first the fish market, then the rope works, then the long row of "
          "warehouses that still stands today beside the water, painted in the colours of the ships.")
_TOKENS = re.compile(r"\s*\S+").findall(ANSWER)


NO_PREFILL_MODEL = "claude-no-prefill"
"""A model the Messages server treats as current Claude models do: a request ending with an
assistant prefill is refused with 400, so a continuation takes the provider's fallback."""


@dataclass(frozen=True)
class ModelFault:
    name: str
    replies: tuple[Reply, ...]
    expected_outcome: str
    expected_error: str | None = None
    min_seconds: float = 0.0
    model: str | None = None


def answer() -> Reply:
    return Reply.text(ANSWER, token_delay=TOKEN_DELAY_SECONDS)


FAULTS = {
    fault.name: fault for fault in (
        ModelFault("overloaded_529", (Reply.http_error(529), answer()), "completed"),
        ModelFault("rate_limited_429", (Reply.http_error(429, headers={"retry-after": "1"}), answer()), "completed",
                   min_seconds=1.0),
        ModelFault("server_error_500", (Reply.http_error(500), answer()), "completed"),
        ModelFault("cut_mid_stream",
                   (Reply.cut(after_tokens=CUT_AFTER_TOKENS, text=ANSWER),
                    Reply.text("".join(_TOKENS[CUT_AFTER_TOKENS:]), token_delay=TOKEN_DELAY_SECONDS)), "completed"),
        # The refused prefill takes no scripted reply; the fallback request gets the whole answer,
        # which the server continues from the cut text, repeating its last words first.
        ModelFault("cut_no_prefill", (Reply.cut(after_tokens=CUT_AFTER_TOKENS, text=ANSWER), answer()), "completed",
                   model=NO_PREFILL_MODEL),
        # Each retry stalls too (the provider's read timeout may end a stalled request first).
        ModelFault("stall_past_deadline", (Reply.stall(MAX_RUN_SECONDS * 4, after_tokens=5, text=ANSWER),) * 6,
                   "failed_cleanly", expected_error="run_timed_out"),
    )
}


def stack_environment(base_url: str) -> dict[str, str]:
    return {"MODEL_PROVIDER": "anthropic", "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test",
            "MAX_RUN_SECONDS": str(MAX_RUN_SECONDS)}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or [] if isinstance(block, dict))


def _continued_from_prefix(requests: list[RecordedRequest]) -> bool | None:
    """Whether the request after the cut carried the cut text as the answer so far (prefill or the
    fallback's partial assistant message)."""
    if len(requests) < 2 or not isinstance(requests[1].body, dict):
        return None
    prefix = "".join(_TOKENS[:CUT_AFTER_TOKENS]).strip()
    assistant = [m for m in requests[1].body.get("messages", []) if m.get("role") == "assistant"]
    return bool(assistant) and _text_of(assistant[-1].get("content")).strip() == prefix


async def _use_up(server: MessagesServer, unused: int) -> None:
    """Send the server `unused` requests of our own: each takes the next scripted reply on arrival,
    so a short timeout is enough even for a stall."""
    async with httpx.AsyncClient(timeout=0.5) as http:
        for _ in range(unused):
            try:
                await http.post(f"{server.base_url}/v1/messages", json={"model": "drain", "messages": []})
            except httpx.HTTPError:
                pass


async def _one(client: RunClient, server: MessagesServer, fault: ModelFault) -> tuple[RunTrace, list[RecordedRequest]]:
    first = len(server.requests)
    server.script(*fault.replies)
    settings = {"settings": {"model": fault.model}} if fault.model else {}
    trace = await client.start("Tell me about the harbour.", **settings)
    await client.follow(trace)
    requests = server.requests[first:]
    await _use_up(server, len(fault.replies) - len(requests))
    return trace, requests


async def run(stack: FaultStack, server: MessagesServer, size: SuiteSize,
              progress: Callable[[str], None]) -> ScenarioResult:
    result = ScenarioResult("model faults (anthropic provider)")
    outcomes: list[dict[str, Any]] = []
    async with http_client() as http:
        client = RunClient(stack.base_url, http, hang_seconds=size.hang_seconds)
        for name in size.model_faults:
            fault = FAULTS[name]
            trace, requests = await _one(client, server, fault)
            verdict = await judge_run(client, trace, ANSWER if fault.expected_outcome == "completed" else None)
            result.add(verdict)
            seconds = (trace.ended_at or time.time()) - trace.started_at
            as_expected = (verdict.outcome == fault.expected_outcome
                           and (fault.expected_error is None or verdict.error_code == fault.expected_error)
                           and (verdict.text_whole is not False) and seconds >= fault.min_seconds)
            result.expected_outcomes_missed += not as_expected
            outcome = {"fault": name, "expected": fault.expected_outcome + (f" ({fault.expected_error})"
                                                                            if fault.expected_error else ""),
                       "outcome": verdict.outcome, "status": verdict.status, "error_code": verdict.error_code,
                       "text_whole": verdict.text_whole, "model_requests": len(requests),
                       "seconds": round(seconds, 2), "as_expected": as_expected, "problems": verdict.problems[:3]}
            if name in ("cut_mid_stream", "cut_no_prefill"):
                outcome["continued_from_cut_text"] = _continued_from_prefix(requests[-2:])
            outcomes.append(outcome)
            progress(f"  model fault {name}: {verdict.outcome} ({verdict.status}, {verdict.error_code}), "
                     f"{outcome['model_requests']} model request(s), {seconds:.1f}s")
    result.details["outcomes"] = outcomes
    result.notes.extend(f"{o['fault']}: {o['status']}{' ' + o['error_code'] if o['error_code'] else ''}"
                        f"{'' if o['as_expected'] else ' (unexpected)'}" for o in outcomes)
    return result
