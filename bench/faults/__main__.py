"""`make faults`: inject faults into the local stack and check that no run loses, repeats or
reorders an event, hangs, or ends uncleanly.

    python -m bench.faults [--smoke] [--rounds 5] [--runs 20] [--cycles 1000] [--only kills,model] [--out DIR]

Prints one row per scenario and writes `faults.json` and `faults.md` to --out (bench/results).
Exits 1 when any target is missed (every count's target is zero; recovery p50 ≤ 45 s), 0 otherwise.
`--smoke` is the small pass `make test` runs (tests/integration/test_fault_suite_smoke.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.machine import describe
from bench.stack import ROOT
from devstack.messages_server import MessagesServer

from . import disconnects, kills, model_faults, report, throttling
from .scenario import ScenarioResult
from .sizes import SuiteSize
from .stack import running_stack

SCENARIOS = ("disconnects", "kills", "throttling", "model")
SCRIPTED_STACK = {"MAX_RUN_SECONDS": "120", "STREAM_RETENTION_SECONDS": "900"}


def parse_arguments(argv: list[str] | None) -> tuple[SuiteSize, set[str], Path]:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the small pass `make test` runs (about a minute)")
    parser.add_argument("--rounds", type=int, help="kill rounds (default 5; smoke 1)")
    parser.add_argument("--runs", type=int, help="runs in flight at once in each scenario (default 20; smoke 5)")
    parser.add_argument("--cycles", type=int, help="disconnect/resume cycles in all (default 1000; smoke 100)")
    parser.add_argument("--hang-seconds", type=float, help="no event for this long and no end: hung (default 90)")
    parser.add_argument("--seed", type=int, help="seed of the random moments (default 1)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where faults.json/.md go")
    args = parser.parse_args(argv)
    size = SuiteSize.for_smoke() if args.smoke else SuiteSize()
    for name in ("rounds", "runs", "cycles", "hang_seconds", "seed"):
        if getattr(args, name) is not None:
            setattr(size, name, getattr(args, name))
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return size, only, args.out


async def run_scenarios(size: SuiteSize, only: set[str], log_dir: Path,
                        progress: Callable[[str], None]) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    if only & {"disconnects", "kills"}:
        progress("scripted stack: disconnects, then kills")
        with running_stack(log_dir, "scripted", {**SCRIPTED_STACK, **kills.stack_environment()}) as stack:
            if "disconnects" in only:
                results.append(await disconnects.run(stack, size, progress))
            if "kills" in only:
                results.append(await kills.run(stack, size, progress))
    if "throttling" in only:
        progress("scripted stack with DYNAMODB_FAULTS")
        with running_stack(log_dir, "throttled", {**SCRIPTED_STACK, **throttling.stack_environment(size)}) as stack:
            results.append(await throttling.run(stack, size, progress))
    if "model" in only:
        progress("anthropic stack against a local Messages server")
        with MessagesServer(default=model_faults.answer(), refuse_prefill_models=[model_faults.NO_PREFILL_MODEL]) \
                as server, \
                running_stack(log_dir, "anthropic", model_faults.stack_environment(server.base_url)) as stack:
            results.append(await model_faults.run(stack, server, size, progress))
    return results


def main(argv: list[str] | None = None) -> int:
    size, only, out = parse_arguments(argv)
    out.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="runwire-faults-"))
    began = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    command = "python -m bench.faults" + (" --smoke" if size.smoke else "")
    progress(f"{command}: {size.describe()}; logs of the processes in {log_dir}")
    results = asyncio.run(run_scenarios(size, only, log_dir, progress))
    misses = [f"{r.name}: {m}" for r in results for m in r.misses()]
    machine = describe()
    finished = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"`{command}` on {finished}: {machine['nproc']} × {machine['cpu_model']}, load average "
              f"{os.getloadavg()[0]:.2f} at the end; {time.monotonic() - began:.0f}s. Targets: zero lost, "
              f"duplicated, out of order, mismatched, hung, unclean; recovery p50 ≤ 45 s.")
    print()
    print(report.render_table(results))
    outcomes = report.render_model_outcomes(results)
    if outcomes:
        print()
        print(outcomes)
    print()
    print(report.render_notes(results))
    report.write_json(out / "faults.json", results, {"command": command, "finished_at": finished, "size": size.describe(),
                                                     "machine": machine, "misses": misses,
                                                     "duration_seconds": round(time.monotonic() - began, 1)})
    (out / "faults.md").write_text(report.render_markdown(results, header))
    print()
    print("all targets met" if not misses else "targets missed:\n  " + "\n  ".join(misses))
    progress(f"wrote {out / 'faults.json'} and {out / 'faults.md'}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
