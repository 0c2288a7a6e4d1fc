"""`python -m bench.faults --smoke` (what `make faults` runs, small): under a killed worker, client
disconnects, injected DynamoDB faults and model faults, no run loses, repeats or reorders an event,
hangs, or ends other than once.

The suite's own figures are `make faults`'s to report; this checks the smoke pass meets every
target, scenario by scenario, so a failure names the scenario and what it missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COUNTS = ("hung", "unclean", "lost", "duplicated", "out_of_order", "mismatched", "not_one_end")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("faults")
    completed = subprocess.run([sys.executable, "-m", "bench.faults", "--smoke", "--out", str(out)],
                               cwd=ROOT, capture_output=True, text=True, timeout=400)
    results = json.loads((out / "faults.json").read_text())
    results["returncode"], results["output"] = completed.returncode, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert (out / "faults.md").read_text().startswith("`python -m bench.faults --smoke`")
    return results


def scenario(suite: dict, prefix: str) -> dict:
    return next(s for s in suite["scenarios"] if s["name"].startswith(prefix))


@pytest.mark.parametrize("prefix", ["interrupted runs", "disconnect/resume", "DynamoDB faults", "model faults"])
def test_smoke_scenario_loses_repeats_reorders_and_hangs_nothing_and_ends_each_run_once(suite, prefix):
    result = scenario(suite, prefix)
    if result["skipped"]:
        pytest.skip(result["skipped"])
    assert result["runs"] > 0
    assert {name: result[name] for name in COUNTS} == dict.fromkeys(COUNTS, 0), result["runs_with_problems"][:5]
    assert result["misses"] == [], result["runs_with_problems"][:5]


def test_smoke_run_completes_every_disconnect_cycle_with_both_resume_styles(suite):
    details = scenario(suite, "disconnect/resume")["details"]
    assert details["cycles"] == suite["size"]["cycles"]
    assert min(details["by_mode"].values()) > 0


def test_smoke_pass_exits_zero_only_when_every_target_is_met(suite):
    assert (suite["returncode"] == 0) == (suite["misses"] == []), suite["output"]
    assert suite["returncode"] == 0, suite["output"]
