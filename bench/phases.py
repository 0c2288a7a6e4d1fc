"""The benchmark's phases. Each starts what it measures fresh, runs its clients, then reads the
counting server's log and attributes every request to its run.

1. sequential  runs one at a time, pipeline and baseline alternating: time to first token, lag at
               concurrency 1, and the per-run request counts, durations and capacity units.
               Before the first run, the idle stack's SQS polling is counted for a few seconds.
2. levels      N concurrent two-step runs (each with one reader), started evenly over `ramp_seconds`,
               for each N; the same N on the baseline. Lag, errors, lost/duplicated tokens, and
               where each token's lag went (stage by stage, from the log's timestamps).
3. idle        runs whose model stalls before its first token: the reader's queries while idle.
4. rates       the same streamed time at several token rates: chunk writes per streamed second.
5. calibration moto's own Query/PutItem latency as its table grows (`bench.calibration`).
6. cold start  each function's handler import (`bench.coldstart`).

Between batches of runs the finished runs' items are deleted (`Pipeline.prune`, not counted), as
DynamoDB's TTL would in time: moto never expires items, and stock moto's Query walks the whole
table (`--stock-moto`; `bench.counting` explains the default), so without it every run would pay
for all the runs before it, a cost DynamoDB does not have.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import calibration, coldstart
from .accounting import Accounts, RunLedger, account
from .clients import LoopLagMonitor, RunTrace, baseline_run, directive, http_client, two_step_run
from .distributions import mean, median, summarize
from .machine import CpuMeter
from .stack import Pipeline, auth_headers, baseline_server, pipeline_stack

Progress = Callable[[str], None]

STAGES = (
    ("behind_write", "emitted while the worker's previous PutItem is in flight → that PutItem answered"),
    ("window", "→ the worker decides to write the token's chunk (coalescing window, thread handoff)"),
    ("to_moto", "write decided → its PutItem reaches moto (botocore, HTTP connect)"),
    ("put", "the chunk's write inside moto (a fenced TransactWriteItems: the run's lease, the chunk's Put)"),
    ("until_poll", "the write answered → the reader's next Query reaches moto (poll interval)"),
    ("query", "that Query inside moto"),
    ("to_client", "Query answered → the client parses the SSE event (stream app, HTTP, client)"),
)

DYNAMODB_REQUEST_MS = 5.0
"""An assumed in-region DynamoDB PutItem or Query latency ("single-digit milliseconds"), for the
estimate of what the lag would be on AWS; everything else in that estimate is measured."""
DYNAMODB_TRANSACTION_MS = 2 * DYNAMODB_REQUEST_MS
"""An assumed TransactWriteItems latency: a chunk write is one (fenced by the worker's lease), and a
transaction does two phases (prepare, commit), so twice a single write."""

TTFT_STAGES = (
    ("api", "POST sent → its SendMessage answered (API app: auth, PutItem run, SendMessage)"),
    ("queue", "SendMessage answered → the worker loop's ReceiveMessage returns it"),
    ("worker_start", "message received → first token emitted (GetItem, claim UpdateItem, agent start)"),
    *STAGES,
)


@dataclass
class BenchConfig:
    quick: bool = False
    tokens: int = 100
    delay_ms: float = 20
    sequential_runs: int = 30
    warmup_runs: int = 2
    levels: list[tuple[int, int]] = field(default_factory=lambda: [(10, 3), (50, 2), (100, 2)])
    """(concurrent runs, rounds); concurrency 1 is the sequential phase"""
    ramp_seconds: float = 1.0
    run_timeout: float = 120.0
    sqs_idle_seconds: float = 10.0
    idle_runs: int = 3
    stall_seconds: float = 5.0
    rate_delays_ms: list[float] = field(default_factory=lambda: [2, 5, 20, 50])
    rate_runs: int = 2
    rate_stream_seconds: float = 2.0
    calibration_sizes: list[int] = field(default_factory=lambda: [100, 1000, 3000, 10000])
    calibration_samples: int = 30
    coldstart_repeats: int = 5
    query_by: str = "partition"
    """how the counting moto server answers a Query: `partition` (as DynamoDB) or `scan` (stock moto)"""

    @classmethod
    def for_quick_run(cls) -> BenchConfig:
        return cls(
            quick=True, sequential_runs=3, warmup_runs=1, levels=[(3, 1)], run_timeout=60, sqs_idle_seconds=3,
            idle_runs=1, stall_seconds=2, rate_delays_ms=[5, 20], rate_runs=1, rate_stream_seconds=1.0,
            calibration_sizes=[100, 1000], calibration_samples=5, coldstart_repeats=1,
        )

    @property
    def task(self) -> str:
        return directive(self.tokens, self.delay_ms)

    def describe(self) -> dict[str, Any]:
        return {
            "model": f"scripted: {self.tokens} tokens, {self.delay_ms:g} ms apart ({self.task})",
            "sequential_runs": self.sequential_runs,
            "levels": [{"concurrency": 1, "rounds": self.sequential_runs, "note": "the sequential phase"}]
            + [{"concurrency": n, "rounds": r} for n, r in self.levels],
            "ramp_seconds": self.ramp_seconds,
            "run_timeout_seconds": self.run_timeout,
            "idle_stall_seconds": self.stall_seconds,
            "rate_delays_ms": self.rate_delays_ms,
            "moto_query_by": self.query_by,
        }


# --- per-run and per-token analysis ------------------------------------------------------------
def integrity(traces: list[RunTrace]) -> dict[str, Any]:
    lost = duplicated = reordered = 0
    for trace in traces:
        numbers = [t.n for t in trace.tokens]
        expected = set(range(1, trace.expected_tokens + 1))
        lost += len(expected - set(numbers))
        duplicated += len(numbers) - len(set(numbers))
        reordered += sum(1 for a, b in zip(numbers, numbers[1:], strict=False) if b < a)
    errors = [t.error for t in traces if t.error]
    return {
        "runs": len(traces),
        "errors": len(errors),
        "lost_tokens": lost,
        "duplicated_tokens": duplicated,
        "reordered_tokens": reordered,
        "error_kinds": dict(Counter(e.split(":")[0][:80] for e in errors)),
    }


def lags(traces: list[RunTrace]) -> list[float]:
    return [t.lag_ms for trace in traces for t in trace.tokens]


def ttfts(traces: list[RunTrace]) -> list[float]:
    return [trace.ttft_ms for trace in traces if trace.ttft_ms is not None]


def streamed_window(trace: RunTrace) -> tuple[float, float] | None:
    """First → last token, as the client received them (the reader's flowing window)."""
    if len(trace.tokens) < 2:
        return None
    return trace.tokens[0].received, trace.tokens[-1].received


def streamed_seconds(trace: RunTrace) -> float | None:
    """First → last token, as the model emitted them."""
    if len(trace.tokens) < 2:
        return None
    return trace.tokens[-1].emitted - trace.tokens[0].emitted


def _issuer(app: str) -> str:
    return app.removeprefix("runwire-") or "other"


def run_measures(trace: RunTrace, ledger: RunLedger | None) -> dict[str, Any]:
    measures: dict[str, Any] = {"run_id": trace.run_id, "ttft_ms": trace.ttft_ms, "error": trace.error}
    if ledger is None:
        return measures
    writes = ledger.writes()
    chunk_puts = [c for c in ledger.dynamo if c.is_chunk_put]
    streamed = streamed_seconds(trace)
    window = streamed_window(trace)
    flowing = ledger.reader_queries(*window) if window else []
    reads = ledger.reads()
    measures.update({
        "streamed_seconds": streamed,
        "dynamodb_writes": dict(Counter(c.operation for c in writes)),
        "dynamodb_write_requests": len(writes),
        "dynamodb_items_written": sum(c.item_count for c in writes),
        "write_request_units": sum(c.capacity_units for c in writes),
        "chunk_puts": len(chunk_puts),
        "chunk_writes_per_streamed_second": len(chunk_puts) / streamed if streamed else None,
        "dynamodb_reads": dict(Counter(f"{_issuer(c.request.app)} {c.operation}" for c in reads)),
        "read_request_units": sum(c.capacity_units for c in reads),
        "reader_queries_while_flowing": len(flowing),
        "reader_queries_per_streamed_second": len(flowing) / (window[1] - window[0]) if window else None,
        "sqs": dict(ledger.sqs),
        "sqs_requests": sum(ledger.sqs.values()),
        "start_run_seconds": (trace.accepted - trace.started) if trace.accepted else None,
        "worker_seconds": ledger.worker_seconds,
        "stream_seconds": (trace.ended - trace.stream_opened) if trace.ended and trace.stream_opened else None,
    })
    return measures


def decompose(trace: RunTrace, ledger: RunLedger | None) -> list[dict[str, float]]:
    """Each token's lag, split at the timestamps the log holds. The stages add up to the lag.
    `until_poll` is negative when the reader's Query reached moto before the PutItem had been
    answered but was served after it (a saturated moto serves requests out of arrival order)."""
    if ledger is None:
        return []
    writes = ledger.chunk_writes()
    first_read = ledger.first_read_of()
    stages = []
    for token in trace.tokens:
        write, read = writes.get(token.seq), first_read.get(token.seq)
        if write is None or read is None:
            continue
        # The worker writes one chunk at a time: a token emitted while the previous PutItem was in
        # flight waits for it before the coalescer can even see it.
        previous = writes.get(token.seq - 1)
        behind = max(0.0, min(previous.done, write.decided) - token.emitted) if previous else 0.0
        stages.append({
            "behind_write": behind * 1000,
            "window": (write.decided - token.emitted - behind) * 1000,
            "to_moto": (write.arrived - write.decided) * 1000,
            "put": (write.done - write.arrived) * 1000,
            "until_poll": (read.request.started - write.done) * 1000,
            "query": (read.request.ended - read.request.started) * 1000,
            "to_client": (token.received - read.request.ended) * 1000,
        })
    return stages


def ttft_stages(trace: RunTrace, ledger: RunLedger | None) -> dict[str, float] | None:
    """A run's time to first token, split at the log's timestamps: start-up, then token 1's lag."""
    if ledger is None or not trace.tokens or ledger.sent_at is None or ledger.received_by_worker is None:
        return None
    first = decompose(RunTrace(trace.kind, 1, tokens=trace.tokens[:1]), ledger)
    if not first:
        return None
    return {
        "api": (ledger.sent_at - trace.started) * 1000,
        "queue": (ledger.received_by_worker - ledger.sent_at) * 1000,
        "worker_start": (trace.tokens[0].emitted - ledger.received_by_worker) * 1000,
        **first[0],
    }


def poll_rate(started: list[float]) -> float | None:
    """Polls per second from consecutive polls' start times: (n − 1) polls over the time they span,
    so a window's edges do not add a poll."""
    starts = sorted(started)
    if len(starts) < 2 or starts[-1] <= starts[0]:
        return None
    return round((len(starts) - 1) / (starts[-1] - starts[0]), 2)


def dynamodb_estimate(rows: list[dict[str, float]]) -> list[float]:
    """Each token's lag with moto's chunk write and Query times swapped for DynamoDB's (assumed)."""
    return [sum(r.values()) - r["put"] - r["query"] + DYNAMODB_TRANSACTION_MS + DYNAMODB_REQUEST_MS for r in rows]


def stage_summary(rows: list[dict[str, float]], stages: tuple[tuple[str, str], ...] = STAGES) -> dict[str, Any]:
    return {name: summarize((r[name] for r in rows), (50, 95)) for name, _ in stages}


def moto_load(accounts: Accounts, start: float, end: float) -> dict[str, Any]:
    """How hard the moto server worked in [start, end): its request rate and its busy time."""
    window = [r for r in accounts.all_requests if start <= r.started < end and not r.app.startswith("bench")]
    seconds = max(end - start, 1e-9)
    # A long-polling ReceiveMessage waits rather than works: left out of the busy time.
    working = [r for r in window if r.operation != "ReceiveMessage"]
    return {
        "requests_per_second": round(len(window) / seconds, 1),
        "busy_seconds_per_second": round(sum(r.seconds for r in working) / seconds, 2),
        "query_ms": summarize((r.seconds * 1000 for r in window if r.operation == "Query"), (50, 95)),
        "put_item_ms": summarize((r.seconds * 1000 for r in window if r.operation == "PutItem"), (50, 95)),
        "by_operation_per_second": {
            f"{_issuer(app)} {op}": round(n / seconds, 1)
            for (app, op), n in Counter((r.app, r.operation) for r in window).most_common()
        },
    }


# --- phases --------------------------------------------------------------------------------------
async def _sequential(pipeline: Pipeline, baseline_url: str, cfg: BenchConfig, progress: Progress,
                      ) -> tuple[list[RunTrace], list[RunTrace], tuple[float, float]]:
    headers = auth_headers()
    pipeline_traces: list[RunTrace] = []
    baseline_traces: list[RunTrace] = []
    async with http_client(8) as client:
        idle_from = time.time()
        await asyncio.sleep(cfg.sqs_idle_seconds)
        idle_until = time.time()
        for _ in range(cfg.warmup_runs):
            warm = await two_step_run(client, pipeline.base_url, headers, cfg.task, cfg.tokens, cfg.run_timeout)
            await baseline_run(client, baseline_url, headers, cfg.task, cfg.tokens, cfg.run_timeout)
            if warm.run_id:
                pipeline.prune([warm.run_id])
        for i in range(cfg.sequential_runs):
            # Alternate which goes first, so neither always runs right after the other.
            order = (two_step_run, baseline_run) if i % 2 == 0 else (baseline_run, two_step_run)
            for runner in order:
                url = pipeline.base_url if runner is two_step_run else baseline_url
                trace = await runner(client, url, headers, cfg.task, cfg.tokens, cfg.run_timeout)
                (pipeline_traces if runner is two_step_run else baseline_traces).append(trace)
            if pipeline_traces[-1].run_id and pipeline_traces[-1].ok:
                pipeline.prune([pipeline_traces[-1].run_id])
            if (i + 1) % 5 == 0 or i + 1 == cfg.sequential_runs:
                done = pipeline_traces
                progress(f"  sequential: {i + 1}/{cfg.sequential_runs} pairs; pipeline TTFT p50 "
                         f"{median(ttfts(done)) or 0:.0f} ms, baseline {median(ttfts(baseline_traces)) or 0:.0f} ms")
    return pipeline_traces, baseline_traces, (idle_from, idle_until)


def sequential_phase(cfg: BenchConfig, log_dir: Path, progress: Progress) -> dict[str, Any]:
    progress(f"phase 1/6: sequential — {cfg.sequential_runs} pipeline + {cfg.sequential_runs} baseline runs, "
             f"one at a time (first {cfg.sqs_idle_seconds:g}s: the idle stack's SQS polling)")
    with CpuMeter() as cpu, pipeline_stack(log_dir, "sequential", cfg.delay_ms, cfg.query_by) as pipeline, \
            baseline_server(log_dir, cfg.delay_ms) as baseline_url:
        pipe, base, (idle_from, idle_until) = asyncio.run(_sequential(pipeline, baseline_url, cfg, progress))
        accounts = account(pipeline.requests.fetch())
    idle_seconds = idle_until - idle_from
    idle_receives = [r for r in accounts.idle_receives if idle_from <= r.started < idle_until]
    runs = [run_measures(t, accounts.ledger(t.run_id)) for t in pipe]
    stages = [row for t in pipe for row in decompose(t, accounts.ledger(t.run_id))]
    ok_runs = [r for r in runs if r.get("error") is None and "chunk_puts" in r]
    return {
        "traces": {"pipeline": pipe, "baseline": base},
        "runs": runs,
        "ttft_ms": {"pipeline": summarize(ttfts(pipe), (50, 95)), "baseline": summarize(ttfts(base), (50, 95))},
        "lag_ms": {"pipeline": summarize(lags(pipe)), "baseline": summarize(lags(base))},
        "integrity": {"pipeline": integrity(pipe), "baseline": integrity(base)},
        "stages_ms": stage_summary(stages),
        "lag_ms_on_dynamodb_estimate": {
            **summarize(dynamodb_estimate(stages)),
            "how": f"1-run stages as measured, the chunk's transactional write at {DYNAMODB_TRANSACTION_MS:g} ms and "
                   f"the Query at {DYNAMODB_REQUEST_MS:g} ms: on AWS each "
                   "worker and reader is its own Lambda and each run its own partition, so runs do not queue "
                   "behind each other as they do in one moto process",
        },
        "ttft_stages_ms": stage_summary(
            [row for t in pipe if (row := ttft_stages(t, accounts.ledger(t.run_id))) is not None], TTFT_STAGES),
        "per_run": _per_run_means(ok_runs),
        "baseline_run_seconds": mean(t.ended - t.started for t in base if t.ended),
        "sqs_idle": {
            "seconds": round(idle_seconds, 2),
            "receive_message_calls": len(idle_receives),
            # back-to-back long polls: (n − 1) over the time their starts span
            "per_second": poll_rate([r.started for r in idle_receives]),
        },
        "moto": moto_load(accounts, idle_until, time.time()),
        "cpu_busy_percent": cpu.busy_percent,
    }


def _per_run_means(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def avg(key: str) -> float | None:
        value = mean(r[key] for r in runs if r.get(key) is not None)
        return None if value is None else round(value, 4)

    def summed(key: str) -> dict[str, float]:
        totals: Counter[str] = Counter()
        for r in runs:
            totals.update(r.get(key, {}))
        return {k: round(v / len(runs), 3) for k, v in sorted(totals.items())} if runs else {}

    keys = ("dynamodb_write_requests", "dynamodb_items_written", "write_request_units", "chunk_puts",
            "chunk_writes_per_streamed_second", "read_request_units", "reader_queries_per_streamed_second",
            "sqs_requests", "start_run_seconds", "worker_seconds", "stream_seconds", "streamed_seconds")
    result: dict[str, Any] = {"runs": len(runs), **{k: avg(k) for k in keys}}
    result["dynamodb_writes"] = summed("dynamodb_writes")
    result["dynamodb_reads"] = summed("dynamodb_reads")
    result["sqs"] = summed("sqs")
    if result["streamed_seconds"]:
        result["dynamodb_write_requests_per_streamed_second"] = round(
            result["dynamodb_write_requests"] / result["streamed_seconds"], 2)
    return result


async def _batch(runner: Any, base_url: str, n: int, cfg: BenchConfig) -> list[RunTrace]:
    headers = auth_headers()
    async with http_client(2 * n + 10) as client:
        async def one(i: int) -> RunTrace:
            await asyncio.sleep(i * cfg.ramp_seconds / n)
            return await runner(client, base_url, headers, cfg.task, cfg.tokens, cfg.run_timeout)

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _monitored_batch(runner: Any, base_url: str, n: int, cfg: BenchConfig) -> tuple[list[RunTrace], list[float]]:
    with LoopLagMonitor() as monitor:
        traces = await _batch(runner, base_url, n, cfg)
    return traces, monitor.samples_ms


def levels_phase(cfg: BenchConfig, log_dir: Path, progress: Progress) -> dict[str, Any]:
    progress("phase 2/6: concurrency levels — " + ", ".join(f"{n} runs × {r} rounds" for n, r in cfg.levels))
    results: dict[str, Any] = {}
    for n, rounds in cfg.levels:
        baseline_traces: list[RunTrace] = []
        client_lag: list[float] = []
        with baseline_server(log_dir, cfg.delay_ms) as baseline_url:
            for _ in range(rounds):
                traces, _ = asyncio.run(_monitored_batch(baseline_run, baseline_url, n, cfg))
                baseline_traces.extend(traces)
        pipeline_traces: list[RunTrace] = []
        table_items: list[int] = []
        with CpuMeter() as cpu, pipeline_stack(log_dir, f"level{n}", cfg.delay_ms, cfg.query_by) as pipeline:
            start = time.time()
            for round_number in range(rounds):
                traces, loop_lag = asyncio.run(_monitored_batch(two_step_run, pipeline.base_url, n, cfg))
                client_lag.extend(loop_lag)
                pipeline_traces.extend(traces)
                table_items.append(pipeline.prune([t.run_id for t in traces if t.run_id and t.ok]))
                done = integrity(pipeline_traces)
                progress(f"  {n} concurrent: round {round_number + 1}/{rounds} done, "
                         f"{done['runs'] - done['errors']}/{done['runs']} runs ok, "
                         f"lag p50 {median(lags(traces)) or 0:.0f} ms")
            end = time.time()
            accounts = account(pipeline.requests.fetch())
        stages = [row for t in pipeline_traces for row in decompose(t, accounts.ledger(t.run_id))]
        runs = [run_measures(t, accounts.ledger(t.run_id)) for t in pipeline_traces]
        results[str(n)] = {
            "concurrency": n,
            "rounds": rounds,
            "traces": {"pipeline": pipeline_traces, "baseline": baseline_traces},
            "lag_ms": {"pipeline": summarize(lags(pipeline_traces)), "baseline": summarize(lags(baseline_traces))},
            "ttft_ms": {"pipeline": summarize(ttfts(pipeline_traces), (50, 95)),
                        "baseline": summarize(ttfts(baseline_traces), (50, 95))},
            "integrity": {"pipeline": integrity(pipeline_traces), "baseline": integrity(baseline_traces)},
            "stages_ms": stage_summary(stages),
            "reader_queries_per_streamed_second": summarize(
                (r["reader_queries_per_streamed_second"] for r in runs
                 if r.get("reader_queries_per_streamed_second") is not None), (50, 95)),
            "chunk_writes_per_streamed_second": summarize(
                (r["chunk_writes_per_streamed_second"] for r in runs
                 if r.get("chunk_writes_per_streamed_second") is not None), (50, 95)),
            "table_items_at_round_end": table_items,
            "moto": moto_load(accounts, start, end),
            "client_event_loop_lag_ms": summarize(client_lag, (50, 99)),
            "cpu_busy_percent": cpu.busy_percent,
        }
    return results


async def _idle_runs(pipeline: Pipeline, cfg: BenchConfig) -> list[RunTrace]:
    headers = auth_headers()
    task = directive(5, cfg.delay_ms, stall=cfg.stall_seconds)
    traces = []
    async with http_client(4) as client:
        for _ in range(cfg.idle_runs):
            trace = await two_step_run(client, pipeline.base_url, headers, task, 5, cfg.run_timeout)
            traces.append(trace)
            if trace.run_id and trace.ok:
                pipeline.prune([trace.run_id])
    return traces


def idle_phase(cfg: BenchConfig, log_dir: Path, progress: Progress) -> dict[str, Any]:
    progress(f"phase 3/6: idle — {cfg.idle_runs} runs whose model stalls {cfg.stall_seconds:g}s before its first token")
    with pipeline_stack(log_dir, "idle", cfg.delay_ms, cfg.query_by) as pipeline:
        traces = asyncio.run(_idle_runs(pipeline, cfg))
        accounts = account(pipeline.requests.fetch())
    per_run: list[dict[str, Any]] = []
    for trace in traces:
        ledger = accounts.ledger(trace.run_id)
        if ledger is None or trace.stream_opened is None or trace.first_token is None:
            continue
        start, end = trace.stream_opened, trace.first_token
        steady_start = start + 1.0  # after the reader's backoff has reached its idle interval
        worker_reads = [c for c in ledger.reads() if c.request.app.endswith("worker") and start <= c.request.started < end]
        per_run.append({
            "run_id": trace.run_id,
            "idle_seconds": round(end - start, 3),
            "reader_queries": len(ledger.reader_queries(start, end)),
            "reader_queries_per_second_whole_window": round(len(ledger.reader_queries(start, end)) / (end - start), 2),
            "reader_queries_per_second": poll_rate(
                [c.request.started for c in ledger.reader_queries(steady_start, end)]),
            "worker_reads_per_second": round(len(worker_reads) / (end - start), 2),
        })
    progress(f"  idle: reader queries/s {median(r['reader_queries_per_second'] for r in per_run) or 0:.2f}")
    return {
        "runs": per_run,
        "integrity": integrity(traces),
        "reader_queries_per_second": median(
            r["reader_queries_per_second"] for r in per_run if r["reader_queries_per_second"] is not None),
        "reader_queries_per_second_whole_window": median(
            r["reader_queries_per_second_whole_window"] for r in per_run),
        "worker_reads_per_second": median(r["worker_reads_per_second"] for r in per_run),
    }


async def _rate_runs(pipeline: Pipeline, cfg: BenchConfig, progress: Progress) -> list[tuple[float, RunTrace]]:
    headers = auth_headers()
    traces = []
    async with http_client(4) as client:
        for delay in cfg.rate_delays_ms:
            tokens = int(round(cfg.rate_stream_seconds * 1000 / delay)) + 1
            for _ in range(cfg.rate_runs):
                trace = await two_step_run(client, pipeline.base_url, headers, directive(tokens, delay), tokens,
                                           cfg.run_timeout)
                traces.append((delay, trace))
                if trace.run_id and trace.ok:
                    pipeline.prune([trace.run_id])
            progress(f"  rates: {delay:g} ms between tokens done")
    return traces


def rates_phase(cfg: BenchConfig, log_dir: Path, progress: Progress) -> dict[str, Any]:
    progress(f"phase 4/6: token rates — {', '.join(f'{d:g}' for d in cfg.rate_delays_ms)} ms between tokens, "
             f"~{cfg.rate_stream_seconds:g}s streamed each")
    with pipeline_stack(log_dir, "rates", cfg.delay_ms, cfg.query_by) as pipeline:
        traces = asyncio.run(_rate_runs(pipeline, cfg, progress))
        accounts = account(pipeline.requests.fetch())
    by_rate: dict[str, Any] = {}
    for delay in cfg.rate_delays_ms:
        chosen = [t for d, t in traces if d == delay]
        runs = [run_measures(t, accounts.ledger(t.run_id)) for t in chosen]
        streamed = [r["streamed_seconds"] for r in runs if r.get("streamed_seconds")]
        tokens = chosen[0].expected_tokens if chosen else 0
        by_rate[f"{delay:g}"] = {
            "delay_ms": delay,
            "tokens": tokens,
            "tokens_per_second_emitted": round((tokens - 1) / sum(streamed) * len(streamed), 1) if streamed else None,
            "chunk_writes_per_streamed_second": mean(
                r["chunk_writes_per_streamed_second"] for r in runs if r.get("chunk_writes_per_streamed_second")),
            "reader_queries_per_streamed_second": mean(
                r["reader_queries_per_streamed_second"] for r in runs if r.get("reader_queries_per_streamed_second")),
            "lag_ms": summarize(lags(chosen), (50, 95)),
            "integrity": integrity(chosen),
        }
    return by_rate


def calibration_phase(cfg: BenchConfig, log_dir: Path, progress: Progress) -> dict[str, Any]:
    progress(f"phase 5/6: moto calibration — Query/PutItem latency at {cfg.calibration_sizes} items")
    return calibration.measure(log_dir, cfg.calibration_sizes, cfg.calibration_samples, progress)


def coldstart_phase(cfg: BenchConfig, progress: Progress) -> dict[str, Any]:
    progress(f"phase 6/6: cold start — handler imports, median of {cfg.coldstart_repeats}")
    return coldstart.measure(cfg.coldstart_repeats, progress)
