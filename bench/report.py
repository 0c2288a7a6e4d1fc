"""The benchmark's outputs: the figures with their targets, the printed tables, latest.json,
latest.md (the table for the README) and lag.png."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import cost
from .clients import RunTrace
from .phases import STAGES, TTFT_STAGES, lags, ttfts

# The lag targets are set at 10 concurrent runs, the integrity ones at 100; a `--quick` run, which
# stops at 3, judges both at its highest level (and says so).
LAG_TARGET_LEVEL = 10
INTEGRITY_TARGET_LEVEL = 100


def figure_keys(levels: list[int]) -> list[str]:
    """Every figure `make bench` reports, for these concurrency levels (1 is the sequential phase)."""
    return [
        "ttft_added_p50_ms", "ttft_added_p95_ms",
        *(f"lag_c{n}" for n in levels), "lag_target_p50_ms", "lag_target_p99_ms", "lag_on_dynamodb_estimate",
        *(f"errors_c{n}" for n in levels), "errors_target", "token_faults_target",
        "chunk_writes_per_streamed_second", "chunk_writes_per_streamed_second_worst_rate",
        "dynamodb_writes_per_run", "dynamodb_writes_per_streamed_second", "dynamodb_write_units_per_run",
        "reader_queries_per_streamed_second", "reader_queries_per_second_idle", "dynamodb_reads_per_run",
        "sqs_requests_per_run", "sqs_idle_polls_per_second",
        "cost_per_1000_runs_usd",
        "import_ms_start_run", "import_ms_stream", "import_ms_worker", "import_floor_ms", "peak_rss_mb",
    ]


@dataclass
class Figure:
    label: str
    value: float | None
    shown: str
    baseline: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def status(self) -> str:
        return "—" if self.met is None else ("met" if self.met else "MISSED")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _triple(summary: dict[str, Any]) -> str:
    return " / ".join("n/a" if summary.get(p) is None else f"{summary[p]:.0f}" for p in ("p50", "p95", "p99")) + " ms"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f" (×{value / base:.1f})"


def _lag_level(levels: dict[str, Any], sequential: dict[str, Any], n: int) -> dict[str, Any]:
    if n == 1:
        return {"lag_ms": sequential["lag_ms"], "integrity": sequential["integrity"]}
    return dict(levels[str(n)])


def build_figures(results: dict[str, Any]) -> dict[str, Figure]:
    seq, levels, idle, rates = results["sequential"], results["levels"], results["idle"], results["rates"]
    cold, per_run = results["coldstart"], results["sequential"]["per_run"]
    figures: dict[str, Figure] = {}

    pipe_ttft, base_ttft = seq["ttft_ms"]["pipeline"], seq["ttft_ms"]["baseline"]
    for p, target in (("p50", 100.0), ("p95", None)):
        added = None if pipe_ttft[p] is None or base_ttft[p] is None else pipe_ttft[p] - base_ttft[p]
        figures[f"ttft_added_{p}_ms"] = Figure(
            f"Added time to first token, {p}", added, _ms(added),
            f"TTFT {_ms(pipe_ttft[p])} vs {_ms(base_ttft[p])}{_ratio(pipe_ttft[p], base_ttft[p])}",
            f"≤ {target:.0f} ms" if target else "", None if target is None or added is None else added <= target,
        )

    available = [1] + [int(k) for k in levels]
    lag_level = LAG_TARGET_LEVEL if LAG_TARGET_LEVEL in available else max(available)
    integrity_level = INTEGRITY_TARGET_LEVEL if INTEGRITY_TARGET_LEVEL in available else max(available)
    for n in available:
        level = _lag_level(levels, seq, n)
        pipe, base = level["lag_ms"]["pipeline"], level["lag_ms"]["baseline"]
        figures[f"lag_c{n}"] = Figure(f"Delivery lag, {n} concurrent (p50/p95/p99)", pipe["p50"], _triple(pipe),
                                      "baseline " + _triple(base))
        faults = level["integrity"]["pipeline"]
        figures[f"errors_c{n}"] = Figure(
            f"Errors, {n} concurrent", faults["errors"], f"{faults['errors']} of {faults['runs']} runs",
            f"baseline {level['integrity']['baseline']['errors']}",
        )
    stand_in = "" if lag_level == LAG_TARGET_LEVEL else f" (stands in for {LAG_TARGET_LEVEL})"
    level = _lag_level(levels, seq, lag_level)
    pipe, base = level["lag_ms"]["pipeline"], level["lag_ms"]["baseline"]
    for p, target in (("p50", 50.0), ("p99", 150.0)):
        figures[f"lag_target_{p}_ms"] = Figure(
            f"Delivery lag, {lag_level} concurrent{stand_in}, {p}", pipe[p], _ms(pipe[p]),
            f"baseline {_ms(base[p])}{_ratio(pipe[p], base[p])}", f"≤ {target:.0f} ms",
            None if pipe[p] is None else pipe[p] <= target,
        )
    estimate = seq["lag_ms_on_dynamodb_estimate"]
    figures["lag_on_dynamodb_estimate"] = Figure(
        "Delivery lag on DynamoDB, estimate (p50/p95/p99)", estimate["p50"], _triple(estimate),
        "1-run stages, moto's chunk write → 10 ms (a transaction), Query → 5 ms (vs targets p50 ≤ 50, p99 ≤ 150)",
    )
    stand_in = "" if integrity_level == INTEGRITY_TARGET_LEVEL else f" (stands in for {INTEGRITY_TARGET_LEVEL})"
    faults = _lag_level(levels, seq, integrity_level)["integrity"]["pipeline"]
    figures["errors_target"] = Figure(
        f"Errors, {integrity_level} concurrent{stand_in}", faults["errors"],
        f"{faults['errors']} of {faults['runs']} runs", ", ".join(f"{k}: {v}" for k, v in faults["error_kinds"].items()),
        "0", faults["errors"] == 0,
    )
    lost = faults["lost_tokens"] + faults["duplicated_tokens"] + faults["reordered_tokens"]
    figures["token_faults_target"] = Figure(
        f"Lost / duplicated / reordered tokens, {integrity_level} concurrent{stand_in}", lost,
        f"{faults['lost_tokens']} / {faults['duplicated_tokens']} / {faults['reordered_tokens']}", "", "0", lost == 0,
    )

    chunk_rate = per_run["chunk_writes_per_streamed_second"]
    figures["chunk_writes_per_streamed_second"] = Figure(
        "Chunk writes per streamed second (20 ms tokens)", chunk_rate, f"{chunk_rate:.1f}" if chunk_rate else "n/a",
        f"{per_run['chunk_puts']:.1f} chunk writes per run", "≤ 12", None if chunk_rate is None else chunk_rate <= 12,
    )
    worst_delay, worst = max(((k, v["chunk_writes_per_streamed_second"] or 0.0) for k, v in rates.items()),
                             key=lambda kv: kv[1])
    figures["chunk_writes_per_streamed_second_worst_rate"] = Figure(
        "Chunk writes per streamed second, worst token rate", worst, f"{worst:.1f}",
        "at " + ", ".join(f"{k} ms: {(v['chunk_writes_per_streamed_second'] or 0):.1f}" for k, v in rates.items()),
        "≤ 12", worst <= 12,
    )
    writes = per_run["dynamodb_writes"]
    figures["dynamodb_writes_per_run"] = Figure(
        "DynamoDB write requests per run", per_run["dynamodb_write_requests"],
        f"{per_run['dynamodb_write_requests']:.1f}", ", ".join(f"{op} {n:g}" for op, n in writes.items())
        + f" ({per_run['dynamodb_items_written']:.1f} items)",
    )
    figures["dynamodb_writes_per_streamed_second"] = Figure(
        "DynamoDB write requests per streamed second", per_run.get("dynamodb_write_requests_per_streamed_second"),
        f"{per_run.get('dynamodb_write_requests_per_streamed_second') or 0:.1f}",
        f"streamed {per_run['streamed_seconds']:.2f} s per run" if per_run["streamed_seconds"] else "",
    )
    figures["dynamodb_write_units_per_run"] = Figure(
        "DynamoDB write request units per run", per_run["write_request_units"], f"{per_run['write_request_units']:.1f}",
        "1 KB units; ×2 in a transaction",
    )
    flowing = per_run["reader_queries_per_streamed_second"]
    figures["reader_queries_per_streamed_second"] = Figure(
        "Queries per streamed second per reader, tokens flowing", flowing, f"{flowing:.1f}" if flowing else "n/a",
        "1 run, 1 reader", "≤ 25", None if flowing is None else flowing <= 25,
    )
    idle_rate = idle["reader_queries_per_second"]
    whole = idle["reader_queries_per_second_whole_window"]
    figures["reader_queries_per_second_idle"] = Figure(
        "Queries per second per reader, idle (model stalled)", idle_rate,
        "n/a" if idle_rate is None else f"{idle_rate:.2f}",
        "steady state (after 1 s); all polls / whole stall incl. backoff ramp: "
        + ("n/a" if whole is None else f"{whole:.2f}"),
        "≤ 2", None if idle_rate is None else idle_rate <= 2,
    )
    reads = per_run["dynamodb_reads"]
    figures["dynamodb_reads_per_run"] = Figure(
        "DynamoDB read requests per run", sum(reads.values()), f"{sum(reads.values()):.1f}",
        ", ".join(f"{k} {v:.1f}" for k, v in reads.items()) + f"; {per_run['read_request_units']:.1f} RRU",
    )
    sqs = per_run["sqs"]
    figures["sqs_requests_per_run"] = Figure(
        "SQS requests per run", per_run["sqs_requests"], f"{per_run['sqs_requests']:.2f}",
        ", ".join(f"{op} {n:.2f}" for op, n in sqs.items()),
    )
    polls = seq["sqs_idle"]["per_second"]
    figures["sqs_idle_polls_per_second"] = Figure(
        "SQS ReceiveMessage while idle, per second", polls, "n/a" if polls is None else f"{polls:.2f}",
        "the local worker loop's long poll (WaitTimeSeconds=1)",
    )
    pipeline_total, baseline_total = results["cost"]["pipeline"]["total"], results["cost"]["baseline"]["total"]
    figures["cost_per_1000_runs_usd"] = Figure(
        "Infrastructure cost per 1,000 runs", pipeline_total, f"${pipeline_total:.4f}",
        f"baseline ${baseline_total:.4f}{_ratio(pipeline_total, baseline_total)}",
    )
    floor = cold["floor"]
    for name, limit in (("start_run", 300), ("stream", 300), ("worker", 800)):
        value = cold[name]["import_ms"]
        context = f"floor {_ms(floor['total_ms'])} (×{value / floor['total_ms']:.2f})" if name != "worker" else ""
        figures[f"import_ms_{name}"] = Figure(f"Handler import, {name}", value, _ms(value), context, f"≤ {limit} ms",
                                              value <= limit)
    figures["import_floor_ms"] = Figure(
        "Cold-start floor: FastAPI + botocore + a DynamoDB client", floor["total_ms"], _ms(floor["total_ms"]),
        f"fastapi {_ms(floor['fastapi_import_ms'])}, botocore {_ms(floor['botocore_session_ms'])}, "
        f"client {_ms(floor['dynamodb_client_ms'])}: what the fixed shape costs before runwire's own code",
    )
    figures["peak_rss_mb"] = Figure(
        "Peak RSS after import (start_run / stream / worker)", max(cold[n]["peak_rss_mb"] for n in ("start_run", "stream", "worker")),
        " / ".join(f"{cold[n]['peak_rss_mb']:.0f}" for n in ("start_run", "stream", "worker")) + " MB",
    )
    return figures


def render_table(figures: dict[str, Figure], markdown: bool = False) -> str:
    header = ("Figure", "Measured", "Baseline / context", "Target", "Result")
    rows = [(f.label, f.shown, f.baseline, f.target, f.status) for f in figures.values()]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [min(60, max(len(str(r[i])) for r in [header, *rows])) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(out)


def render_stages(results: dict[str, Any]) -> str:
    columns = [("1", results["sequential"])] + [(k, v) for k, v in results["levels"].items()]
    header = ["Where a token's lag goes, p50 ms"] + [f"{k} concurrent" for k, _ in columns]
    rows = []
    for name, meaning in STAGES:
        rows.append([f"{name}: {meaning}"] + [
            "n/a" if level["stages_ms"][name]["p50"] is None else f"{level['stages_ms'][name]['p50']:.1f}"
            for _, level in columns])
    rows.append(["total lag p50 (measured)"] + [
        "n/a" if level["lag_ms"]["pipeline"]["p50"] is None else f"{level['lag_ms']['pipeline']['p50']:.1f}"
        for _, level in columns])
    rows.append(["moto: requests/s, busy s/s"] + [
        f"{level['moto']['requests_per_second']:.0f}, {level['moto']['busy_seconds_per_second']:.2f}"
        for _, level in columns])
    rows.append(["moto: Query p50 / p95 ms"] + [
        f"{level['moto']['query_ms']['p50']} / {level['moto']['query_ms']['p95']}" for _, level in columns])
    rows.append(["machine CPU busy %"] + [f"{level.get('cpu_busy_percent')}" for _, level in columns])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(out)


def render_ttft(results: dict[str, Any]) -> str:
    stages = results["sequential"]["ttft_stages_ms"]
    width = max(len(f"{name}: {meaning}") for name, meaning in TTFT_STAGES)
    title = "Where the pipeline's time to first token goes (sequential runs)"
    lines = [f"{title.ljust(width)}  p50 ms  p95 ms",
             "-" * width + "  ------  ------"]
    for name, meaning in TTFT_STAGES:
        p50, p95 = stages[name]["p50"], stages[name]["p95"]
        lines.append(f"{f'{name}: {meaning}'.ljust(width)}  {'n/a' if p50 is None else f'{p50:6.1f}'}  "
                     f"{'n/a' if p95 is None else f'{p95:6.1f}'}")
    ttft = results["sequential"]["ttft_ms"]
    measured = "TTFT measured, pipeline (baseline)"
    lines.append(f"{measured.ljust(width)}  {ttft['pipeline']['p50']:6.1f}  {ttft['pipeline']['p95']:6.1f}"
                 f"   (baseline {ttft['baseline']['p50']} / {ttft['baseline']['p95']})")
    return "\n".join(lines)


def render_cost(cost_result: dict[str, Any]) -> str:
    pipe, base = cost_result["pipeline"], cost_result["baseline"]
    inputs = cost_result["inputs_per_run"]
    parts = ", ".join(f"{k} ${v:.4f}" for k, v in pipe.items() if k != "total")
    return (f"Cost per 1,000 runs: pipeline ${pipe['total']:.4f} ({parts}); baseline ${base['total']:.4f} "
            f"(Lambda {cost_result['baseline_run_seconds']:.2f} s × 512 MB). Per-run inputs: start_run "
            f"{inputs['start_run_seconds']:.3f} s, worker {inputs['worker_seconds']:.2f} s, stream "
            f"{inputs['stream_seconds']:.2f} s, {inputs['sqs_requests']:.2f} SQS requests, "
            f"{inputs['write_request_units']:.1f} WRU, {inputs['read_request_units']:.1f} RRU. Idle SQS polling of "
            f"the local worker loop: ${cost_result['idle_sqs_polling_usd_per_day']:.4f}/day.")


def render_calibration(calibration: dict[str, Any]) -> str:
    parts = [f"{row['items']} items: Query {row['query_scan_server_ms']['p50']} ms stock (table walk) / "
             f"{row['query_partition_server_ms']['p50']} ms by partition, PutItem {row['put_server_ms']['p50']} ms"
             for row in calibration["by_table_size"]]
    return "moto's own latency (server-side p50) by table size — " + "; ".join(parts)


def _strip_traces(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_traces(v) for k, v in value.items() if k != "traces"}
    if isinstance(value, list):
        return [_strip_traces(v) for v in value]
    return value


def write_json(path: Path, results: dict[str, Any], figures: dict[str, Figure]) -> None:
    document = {
        "figures": {k: {**asdict(f), "status": f.status} for k, f in figures.items()},
        **_strip_traces(results),
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def write_markdown(path: Path, results: dict[str, Any], figures: dict[str, Figure]) -> None:
    machine = results["machine"]
    path.write_text(
        f"`make bench` (`python -m bench{' --quick' if results['config']['quick'] else ''}`), "
        f"{results['finished_at']}, on {machine['nproc']} × {machine['cpu_model']}, "
        f"{machine['memory_gib']} GiB, Python {machine['python']} (load average at start "
        f"{machine['load_average_at_start'][0]}). Prices: {cost.Prices().region}, {cost.Prices().as_of}.\n\n"
        + render_table(figures, markdown=True) + "\n"
    )


def write_plot(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def cdf(ax: Any, values: list[float], label: str, **style: Any) -> None:
        if not values:
            return
        ordered = sorted(max(v, 0.1) for v in values)
        ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label, **style)

    seq, levels = results["sequential"], results["levels"]
    fig, (lag_ax, ttft_ax, stage_ax) = plt.subplots(1, 3, figsize=(18, 5.5))
    traces: list[tuple[str, list[RunTrace], list[RunTrace]]] = [
        ("1", seq["traces"]["pipeline"], seq["traces"]["baseline"])]
    traces += [(k, v["traces"]["pipeline"], v["traces"]["baseline"]) for k, v in levels.items()]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (n, pipe, base), color in zip(traces, colors, strict=False):
        cdf(lag_ax, lags(pipe), f"pipeline, {n} concurrent", color=color)
        cdf(lag_ax, lags(base), f"baseline, {n} concurrent", color=color, linestyle="--", alpha=0.7)
    lag_ax.set_xscale("log")
    lag_ax.set_xlabel("delivery lag per token, ms (model emitted → client received)")
    lag_ax.set_ylabel("fraction of tokens")
    lag_ax.set_title("Delivery lag (CDF)")
    lag_ax.axvline(50, color="grey", linewidth=0.8, linestyle=":")
    lag_ax.axvline(150, color="grey", linewidth=0.8, linestyle=":")
    lag_ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(0.25, 0.5))

    cdf(ttft_ax, ttfts(seq["traces"]["pipeline"]), "pipeline (POST → first token)")
    cdf(ttft_ax, ttfts(seq["traces"]["baseline"]), "baseline (request → first token)", linestyle="--")
    ttft_ax.set_xscale("log")
    ttft_ax.set_xlabel("time to first token, ms (sequential runs)")
    ttft_ax.set_title("Time to first token (CDF)")
    ttft_ax.legend(fontsize=8)

    columns = [("1", seq)] + list(levels.items())
    medians = [[max(level["stages_ms"][name]["p50"] or 0.0, 0.0) for name, _ in STAGES] for _, level in columns]
    bottoms = [0.0] * len(columns)
    for index, ((name, _), color) in enumerate(zip(STAGES, colors, strict=False)):
        shares = [100 * row[index] / (sum(row) or 1) for row in medians]
        stage_ax.bar([f"{k} conc." for k, _ in columns], shares, bottom=bottoms, label=name, color=color)
        bottoms = [b + h for b, h in zip(bottoms, shares, strict=False)]
    for x, (_, level) in enumerate(columns):
        stage_ax.annotate(f"lag p50 {level['lag_ms']['pipeline']['p50']:.0f} ms", (x, 101), ha="center", fontsize=8)
    stage_ax.set_ylim(0, 110)
    stage_ax.set_ylabel("% of the summed stage medians")
    stage_ax.set_title("Where a token's lag goes (pipeline, median of each stage)")
    stage_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"runwire bench — {results['config']['model']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
