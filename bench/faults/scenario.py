"""One scenario's row of the table: its runs' verdicts added up, and which targets it missed.

Every count's target is zero (lost, duplicated, out of order, mismatched, hung, unclean), and
so are client-visible errors where the scenario says so; recovery time (a worker's death to the
run's next chunk) has a p50 target of `RECOVERY_P50_TARGET_SECONDS` on the local stack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.distributions import percentile

from .verdicts import Verdict

RECOVERY_P50_TARGET_SECONDS = 45.0
ZERO_TARGETS = ("hung", "unclean", "lost", "duplicated", "out_of_order", "mismatched", "not_one_end")


@dataclass
class ScenarioResult:
    name: str
    runs: int = 0
    completed: int = 0
    failed_cleanly: int = 0
    hung: int = 0
    unclean: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    mismatched: int = 0
    client_errors: int = 0
    not_one_end: int = 0
    """Runs whose client did not receive exactly one `end`, or whose log does not hold exactly one."""
    errors_are_misses: bool = False
    """Whether client-visible errors count against the targets (they do under injected faults)."""
    recovery_seconds: list[float] = field(default_factory=list)
    expected_outcomes_missed: int = 0
    """Model faults: runs whose outcome was not the one expected of that fault."""
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)

    def add(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)
        self.runs += 1
        if verdict.outcome in ("completed", "failed_cleanly", "hung", "unclean"):
            setattr(self, verdict.outcome, getattr(self, verdict.outcome) + 1)
        else:
            self.unclean += 1
        for name in ("lost", "duplicated", "out_of_order", "mismatched", "client_errors"):
            setattr(self, name, getattr(self, name) + getattr(verdict, name))
        self.not_one_end += (verdict.ends_received, verdict.ends_logged) != (1, 1)

    @property
    def recovery_p50(self) -> float | None:
        return percentile(self.recovery_seconds, 50)

    @property
    def recovery_p99(self) -> float | None:
        return percentile(self.recovery_seconds, 99)

    def misses(self) -> list[str]:
        if self.skipped:
            return []
        missed = [f"{name} {getattr(self, name)}" for name in ZERO_TARGETS if getattr(self, name)]
        if self.errors_are_misses and self.client_errors:
            missed.append(f"client errors {self.client_errors}")
        if self.expected_outcomes_missed:
            missed.append(f"unexpected outcomes {self.expected_outcomes_missed}")
        p50 = self.recovery_p50
        if p50 is not None and p50 > RECOVERY_P50_TARGET_SECONDS:
            missed.append(f"recovery p50 {p50:.1f}s > {RECOVERY_P50_TARGET_SECONDS:g}s")
        return missed

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "verdicts"}
        data["recovery_p50"] = None if self.recovery_p50 is None else round(self.recovery_p50, 2)
        data["recovery_p99"] = None if self.recovery_p99 is None else round(self.recovery_p99, 2)
        data["recovery_seconds"] = [round(s, 2) for s in self.recovery_seconds]
        data["misses"] = self.misses()
        data["runs_with_problems"] = [v.as_dict() for v in self.verdicts if v.problems or v.outcome != "completed"][:50]
        return data
