"""Cold start of each function: the import of its handler module, in a fresh interpreter.

For each function a new process, with the environment a deployed function has (table and queue
names, `JWT_SECRET`, and `MODEL_PROVIDER=anthropic` so the worker imports and builds the
production provider), runs

    python -X importtime -c "import functions.<name>.app; <print peak RSS>"

The import time is the cumulative time `-X importtime` reports for `functions.<name>.app` (all it
imports, and the module-level wiring: clients, apps, the provider); the peak RSS is the child's
`VmHWM` (/proc/self/status) printed after the import. (`getrusage(RUSAGE_SELF).ru_maxrss` would be
wrong here: Linux carries it across exec from the forked parent, so a child of a large benchmark
process reports the parent's size.) The figure is
the median of the repeats, after one unmeasured run that leaves the bytecode caches written.
Measured on this machine's Python, not Lambda's python3.12 on arm64 at the function's memory size
(where a 512 MB function gets about a third of a vCPU): it ranks and tracks, it does not predict.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .distributions import median

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("start_run", "stream", "worker")
# Peak RSS is this process's VmHWM. Not ru_maxrss: Linux carries it over exec from the forked parent,
# so a child of a big benchmark process would report the parent's size.
_PROBE = ("import functions.{name}.app\n"
          "print('RSS_KB', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))")


def deployed_environment() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV")}
    return {
        **keep,
        "PYTHONPATH": str(ROOT),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "RUNS_TABLE_NAME": "runwire-runs",
        "RUN_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/runwire-run-queue",
        "FILES_BUCKET_NAME": "runwire-files",
        "JWT_SECRET": "cold-start-secret-0123456789abcdef",
        "MODEL_PROVIDER": "anthropic",
        "ANTHROPIC_API_KEY": "x",
        "POWERTOOLS_SERVICE_NAME": "runwire",
    }


def measure_once(name: str) -> tuple[float, float, dict[str, float]]:
    """(cumulative import ms of functions.<name>.app, peak RSS MB after it, self ms by top-level package)"""
    module = f"functions.{name}.app"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _PROBE.format(name=name)],
        cwd=ROOT, env=deployed_environment(), capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{result.stderr[-3000:]}")
    cumulative_us = None
    by_package: dict[str, float] = {}
    started = False
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.split("|")
        package = fields[-1].strip()
        self_ms = int(fields[0].split(":")[1].strip()) / 1000
        if package == module:
            cumulative_us = int(fields[1].strip())
            break
        started = started or package == "functions"
        if started:
            top = package.split(".")[0]
            by_package[top] = by_package.get(top, 0.0) + self_ms
    if cumulative_us is not None:
        # What the module's own body runs (the wiring: clients, apps, the provider), less the imports in it.
        by_package[f"{module} (module body)"] = cumulative_us / 1000 - sum(by_package.values())
    rss_kb = next(int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("RSS_KB"))
    if cumulative_us is None:
        raise RuntimeError(f"-X importtime did not report {module}")
    return cumulative_us / 1000, rss_kb / 1024, by_package


_FLOOR_PROBE = """
import time
t = time.perf_counter(); import fastapi; fastapi_ms = (time.perf_counter() - t) * 1000
t = time.perf_counter(); import botocore.session; session = botocore.session.get_session(); botocore_ms = (time.perf_counter() - t) * 1000
t = time.perf_counter(); session.create_client("dynamodb", region_name="us-east-1"); client_ms = (time.perf_counter() - t) * 1000
print("FLOOR", fastapi_ms, botocore_ms, client_ms)
"""


def measure_floor(repeats: int) -> dict[str, float]:
    """What any FastAPI function that talks to DynamoDB pays before a line of runwire runs: importing
    FastAPI (with pydantic, starlette, anyio), a botocore session, and building one DynamoDB client.
    The shape fixes FastAPI and DynamoDB, so this is the floor the import targets are measured against."""
    samples = []
    for _ in range(max(1, repeats)):
        result = subprocess.run([sys.executable, "-c", _FLOOR_PROBE], cwd=ROOT, env=deployed_environment(),
                                capture_output=True, text=True, timeout=120, check=True)
        line = next(line for line in result.stdout.splitlines() if line.startswith("FLOOR"))
        samples.append([float(v) for v in line.split()[1:]])
    parts = {name: round(median([s[i] for s in samples]) or 0, 1)
             for i, name in enumerate(("fastapi_import_ms", "botocore_session_ms", "dynamodb_client_ms"))}
    return {**parts, "total_ms": round(sum(parts.values()), 1)}


def measure(repeats: int, progress: Any = print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in FUNCTIONS:
        if repeats > 1:
            measure_once(name)  # writes __pycache__, as a deployment package ships it
        samples = [measure_once(name) for _ in range(repeats)]
        import_ms = [s[0] for s in samples]
        rss_mb = [s[1] for s in samples]
        results[name] = {
            "import_ms": round(median(import_ms) or 0, 1),
            "peak_rss_mb": round(median(rss_mb) or 0, 1),
            "samples_import_ms": [round(v, 1) for v in import_ms],
            "samples_peak_rss_mb": [round(v, 1) for v in rss_mb],
            "heaviest_packages_ms": {
                k: round(v, 1) for k, v in sorted(samples[-1][2].items(), key=lambda kv: -kv[1])[:10]
            },
        }
        progress(f"  cold start {name}: import {results[name]['import_ms']:.0f} ms, "
                 f"peak RSS {results[name]['peak_rss_mb']:.0f} MB (median of {repeats})")
    results["floor"] = measure_floor(repeats)
    progress(f"  cold-start floor (fastapi + botocore + a DynamoDB client): {results['floor']['total_ms']:.0f} ms")
    return results
