"""`python -m bench --quick` still runs end to end: it completes and writes every figure.

A benchmark is not a test: nothing here checks a number, only that the harness has not rotted
(the stack still starts against the counting moto server, the clients still parse the stream,
every figure is still computed). The numbers are `make bench`'s to report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import figure_keys

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_quick_benchmark_completes_and_writes_every_figure_and_the_plot(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    results = json.loads((tmp_path / "latest.json").read_text())
    levels = [level["concurrency"] for level in results["config"]["levels"]]
    missing = [key for key in figure_keys(levels) if key not in results["figures"]]
    assert missing == []
    unmeasured = [key for key, figure in results["figures"].items() if figure["value"] is None]
    assert unmeasured == []
    for section in ("machine", "sequential", "levels", "idle", "rates", "calibration", "coldstart", "cost"):
        assert results[section], section
    assert (tmp_path / "lag.png").stat().st_size > 0
    assert (tmp_path / "latest.md").read_text().startswith("`make bench`")
