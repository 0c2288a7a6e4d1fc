"""How big a fault-suite pass is: the full one (`make faults`) or the smoke one (`--smoke`, in `make test`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ALL_MODEL_FAULTS = ("overloaded_529", "rate_limited_429", "server_error_500", "cut_mid_stream", "cut_no_prefill",
                    "stall_past_deadline")
SMOKE_MODEL_FAULTS = ("overloaded_529", "cut_mid_stream", "cut_no_prefill")


@dataclass
class SuiteSize:
    rounds: int = 5
    """Kill rounds: the worker is SIGKILLed once per round."""
    runs: int = 20
    """Runs in flight at once, in every scenario."""
    cycles: int = 1000
    """Disconnect/resume cycles in all, across the disconnect scenario's runs."""
    tokens: int = 300
    """The length of a killed run's answer (numbered tokens, 20 ms apart)."""
    resume_tokens: int = 600
    """The length of a disconnected run's answer: long enough for its share of the cycles."""
    hang_seconds: float = 90.0
    """A run with no event for this long, and no end, is hung."""
    model_faults: tuple[str, ...] = field(default=ALL_MODEL_FAULTS)
    seed: int = 1
    smoke: bool = False

    @classmethod
    def for_smoke(cls) -> SuiteSize:
        return cls(rounds=1, runs=5, cycles=100, tokens=150, resume_tokens=250, hang_seconds=60.0,
                   model_faults=SMOKE_MODEL_FAULTS, smoke=True)

    def describe(self) -> dict[str, Any]:
        return asdict(self)
