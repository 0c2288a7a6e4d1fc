"""`make bench`: what the pipeline adds — latency, requests, cost, cold start — beside a baseline.

    python -m bench [--quick] [--out bench/results]

Runs the local stack (`MODEL_PROVIDER=scripted`, 100 tokens 20 ms apart) against a moto server
that records every request, and in the same run a pipeline-less baseline (the same scripted model
streamed straight over SSE from one process). Prints a table of every figure with its target,
then where the lag and the requests go; writes `latest.json`, `latest.md` and `lag.png` to --out.
A benchmark, not a test: nothing here fails on a number (`tests/integration/test_bench_smoke.py`
only checks that `--quick` completes and writes its outputs).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import cost, phases, report
from .machine import describe

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few runs, concurrency 1 and 3 (~1 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where to write the results")
    parser.add_argument("--stock-moto", action="store_true",
                        help="let moto answer each Query by walking the whole table, as stock moto does "
                             "(default: by partition, as DynamoDB does; see bench/counting.py)")
    args = parser.parse_args(argv)
    cfg = phases.BenchConfig.for_quick_run() if args.quick else phases.BenchConfig()
    cfg.query_by = "scan" if args.stock_moto else "partition"
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="runwire-bench-"))
    began = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    progress(f"runwire bench{' --quick' if cfg.quick else ''}: logs of the processes in {log_dir}")
    results: dict[str, Any] = {"machine": describe(), "config": {"quick": cfg.quick, **cfg.describe()}}
    results["sequential"] = phases.sequential_phase(cfg, log_dir, progress)
    results["levels"] = phases.levels_phase(cfg, log_dir, progress)
    results["idle"] = phases.idle_phase(cfg, log_dir, progress)
    results["rates"] = phases.rates_phase(cfg, log_dir, progress)
    results["calibration"] = phases.calibration_phase(cfg, log_dir, progress)
    results["coldstart"] = phases.coldstart_phase(cfg, progress)
    results["cost"] = estimate_cost(results)
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["finished_at"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["duration_seconds"] = round(time.monotonic() - began, 1)

    figures = report.build_figures(results)
    report.write_json(args.out / "latest.json", results, figures)
    print()
    print(report.render_table(figures))
    for section in (report.render_stages, report.render_ttft):
        print()
        print(section(results))
    print()
    print(report.render_cost(results["cost"]))
    print(report.render_calibration(results["calibration"]))
    prices = cost.Prices()
    print(f"Prices ({prices.region}, {prices.as_of}): Lambda arm64 ${prices.lambda_arm64_gb_second}/GB-s + "
          f"$0.20/M requests; HTTP API $1.00/M; SQS $0.40/M; DynamoDB on-demand $0.625/M WRU, $0.125/M RRU. "
          f"Memory (template.yaml): start_run 512 MB, worker 1024 MB, stream 512 MB; baseline 512 MB.")
    machine = results["machine"]
    print(f"Machine: {machine['nproc']} × {machine['cpu_model']}, {machine['memory_gib']} GiB, Python "
          f"{machine['python']}; load average {machine['load_average_at_start'][0]} at start, "
          f"{machine['load_average_at_end'][0]} at end; {results['duration_seconds']:.0f}s. moto answered "
          f"Query {'by partition (as DynamoDB)' if cfg.query_by == 'partition' else 'by walking the table (stock)'}.")

    report.write_markdown(args.out / "latest.md", results, figures)
    report.write_plot(args.out / "lag.png", results)
    progress(f"wrote {args.out / 'latest.json'}, {args.out / 'latest.md'} and {args.out / 'lag.png'}")
    return 0


def estimate_cost(results: dict[str, Any]) -> dict[str, Any]:
    per_run = results["sequential"]["per_run"]
    pipeline = cost.PipelineRun(
        start_run_seconds=per_run["start_run_seconds"] or 0.0,
        worker_seconds=per_run["worker_seconds"] or 0.0,
        stream_seconds=per_run["stream_seconds"] or 0.0,
        sqs_requests=per_run["sqs_requests"] or 0.0,
        write_request_units=per_run["write_request_units"] or 0.0,
        read_request_units=per_run["read_request_units"] or 0.0,
    )
    idle_polls = results["sequential"]["sqs_idle"]["per_second"] or 0.0
    return {
        **cost.price_sheet(),
        "inputs_per_run": pipeline.__dict__,
        "baseline_run_seconds": results["sequential"]["baseline_run_seconds"],
        "pipeline": cost.pipeline_cost(pipeline),
        "baseline": cost.baseline_cost(results["sequential"]["baseline_run_seconds"] or 0.0),
        "idle_sqs_polling_usd_per_day": round(idle_polls * 86_400 * cost.Prices().sqs_request, 4),
    }


if __name__ == "__main__":
    sys.exit(main())
