"""What the core counts so an operator sees trouble: runs started and ended, recoveries, retries, tokens.

`RunMetrics` is the port; `runwire.adapters.emf_metrics.PowertoolsRunMetrics` writes CloudWatch
metrics (docs/deployment.md, "Alarms and metrics", lists them), `NullMetrics` drops everything and
`RecordingMetrics` keeps counts for tests. Implementations never raise into the caller: a metric
that cannot be written must not fail a run.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Protocol


class RunMetrics(Protocol):
    def run_started(self, agent_id: str) -> None:
        """A run was accepted and queued (or started at once), for one agent of the catalog."""

    def run_ended(self, status: str) -> None:
        """A run reached a terminal status (a `RunStatus` value: succeeded, failed, cancelled, expired)."""

    def run_recovered(self) -> None:
        """A worker took over a run whose worker died (and ended it `worker_lost`, or resumed it)."""

    def model_retried(self, code: str) -> None:
        """A model call failed with `code` (a bounded set: rate_limited, overloaded, …) and is tried again."""

    def storage_retried(self) -> None:
        """A storage call was throttled or failed transiently and is tried again."""

    def tokens_streamed(self, count: int) -> None:
        """`count` token deltas reached the run's stream. Call once per stretch of work, not per delta."""

    def waited_for_client(self) -> None:
        """A run stopped to wait for its client (client tool outputs, approvals)."""


class NullMetrics:
    """Counts nothing: for callers that do not care, and for tests that do not look."""

    def run_started(self, agent_id: str) -> None:
        pass

    def run_ended(self, status: str) -> None:
        pass

    def run_recovered(self) -> None:
        pass

    def model_retried(self, code: str) -> None:
        pass

    def storage_retried(self) -> None:
        pass

    def tokens_streamed(self, count: int) -> None:
        pass

    def waited_for_client(self) -> None:
        pass


class RecordingMetrics:
    """An in-memory fake: `counts[(method name, dimension value or None)]` is the total recorded.

    Locked, because the worker calls it from its stepper thread as well as its own.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str | None]] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str, dimension: str | None = None) -> int:
        with self._lock:
            return self.counts[(name, dimension)]

    def total(self, name: str) -> int:
        """The total of `name` whatever its dimension value."""
        with self._lock:
            return sum(value for (recorded, _), value in self.counts.items() if recorded == name)

    def run_started(self, agent_id: str) -> None:
        self._add("run_started", str(agent_id))

    def run_ended(self, status: str) -> None:
        self._add("run_ended", str(status))

    def run_recovered(self) -> None:
        self._add("run_recovered")

    def model_retried(self, code: str) -> None:
        self._add("model_retried", str(code))

    def storage_retried(self) -> None:
        self._add("storage_retried")

    def tokens_streamed(self, count: int) -> None:
        self._add("tokens_streamed", value=count)

    def waited_for_client(self) -> None:
        self._add("waited_for_client")

    def _add(self, name: str, dimension: str | None = None, value: int = 1) -> None:
        with self._lock:
            self.counts[(name, dimension)] += value
