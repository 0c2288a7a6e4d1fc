"""`RunMetrics` as CloudWatch metrics: Embedded Metric Format (EMF) lines on stdout.

In Lambda, stdout goes to CloudWatch Logs, which turns each EMF line into metric data points: no API
call, no latency on the run. Powertools builds and validates each line (`EphemeralMetrics`, the
non-singleton provider); locally the lines are printed like any log line.

Why not Powertools `Metrics` with `@log_metrics`: `Metrics` keeps one metric set and one dimension
set per process, so a `status` dimension would apply to every metric of the blob, and invocations
running side by side in one process (devstack's worker loop calls the handler from a thread pool)
would flush each other's metrics. Instead:

- Inside `invocation_metrics()` (or a handler decorated `@metrics_per_invocation`), calls add to that
  invocation's counts, held in a ContextVar, and the counts are written when the invocation ends:
  one line per dimension value, whatever the number of calls.
- Outside any such scope (the stream function's uvicorn app, a thread the core started), each call
  is written at once.
- A line is written with one `write` under a lock, so concurrent lines never interleave.

A dimensioned metric carries two dimension sets, [service] and [service, <dimension>]: the total
and the breakdown are both queryable (the failed-runs alarm divides one by the other).
`POWERTOOLS_METRICS_DISABLED=true` (or `POWERTOOLS_DEV=true` without it) writes nothing, as in
Powertools.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple, ParamSpec, TypeVar

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

log = logging.getLogger("runwire.metrics")

DEFAULT_NAMESPACE = "runwire"
DEFAULT_SERVICE = "runwire"

# Metric names and their dimension, as docs/deployment.md and template.yaml's alarms name them.
RUNS_STARTED, AGENT_DIMENSION = "RunsStarted", "agent_id"
RUNS_ENDED, STATUS_DIMENSION = "RunsEnded", "status"
RUNS_RECOVERED = "RunsRecovered"
MODEL_RETRIES, CODE_DIMENSION = "ModelRetries", "code"
STORAGE_RETRIES = "StorageRetries"
TOKENS_STREAMED = "TokensStreamed"
CLIENT_WAITS = "ClientWaits"

P = ParamSpec("P")
R = TypeVar("R")


class _Line(NamedTuple):
    """What the metrics on one EMF line share."""

    namespace: str
    service: str
    dimension: tuple[str, str] | None


class _Counts:
    """One invocation's counts. Locked: the core's own threads may add to them too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[_Line, str]] = Counter()

    def add(self, line: _Line, name: str, value: int) -> None:
        with self._lock:
            self._counts[(line, name)] += value

    def drain(self) -> dict[_Line, dict[str, int]]:
        with self._lock:
            items, self._counts = self._counts, Counter()
        lines: dict[_Line, dict[str, int]] = {}
        for (line, name), value in items.items():
            lines.setdefault(line, {})[name] = value
        return lines


_invocation: ContextVar[_Counts | None] = ContextVar("runwire_invocation_metrics", default=None)
_write_lock = threading.Lock()


class PowertoolsRunMetrics:
    def __init__(self, namespace: str = DEFAULT_NAMESPACE, service: str = DEFAULT_SERVICE) -> None:
        self._namespace = namespace
        self._service = service

    def run_started(self, agent_id: str) -> None:
        self._add(RUNS_STARTED, 1, (AGENT_DIMENSION, str(agent_id)))

    def run_ended(self, status: str) -> None:
        self._add(RUNS_ENDED, 1, (STATUS_DIMENSION, str(status)))

    def run_recovered(self) -> None:
        self._add(RUNS_RECOVERED, 1)

    def model_retried(self, code: str) -> None:
        self._add(MODEL_RETRIES, 1, (CODE_DIMENSION, str(code)))

    def storage_retried(self) -> None:
        self._add(STORAGE_RETRIES, 1)

    def tokens_streamed(self, count: int) -> None:
        if count > 0:
            self._add(TOKENS_STREAMED, count)

    def waited_for_client(self) -> None:
        self._add(CLIENT_WAITS, 1)

    def _add(self, name: str, value: int, dimension: tuple[str, str] | None = None) -> None:
        if dimension is not None and not dimension[1].strip():
            dimension = (dimension[0], "unknown")  # EMF drops an empty dimension value, and the point with it
        line = _Line(self._namespace, self._service, dimension)
        counts = _invocation.get()
        if counts is not None:
            counts.add(line, name, value)
        else:
            _write({line: {name: value}})


@contextmanager
def invocation_metrics() -> Iterator[None]:
    """Collect the metrics recorded in this context (this invocation) and write them when it ends."""
    counts = _Counts()
    token = _invocation.set(counts)
    try:
        yield
    finally:
        _invocation.reset(token)
        _write(counts.drain())


def metrics_per_invocation(handler: Callable[P, R]) -> Callable[P, R]:
    """Decorate a Lambda handler: what an invocation records is written when it returns or raises."""

    @functools.wraps(handler)
    def invoke(*args: P.args, **kwargs: P.kwargs) -> R:
        with invocation_metrics():
            return handler(*args, **kwargs)

    return invoke


def _emf_line(line: _Line, values: dict[str, int]) -> str:
    """One EMF JSON line (no newline) for `values`, built and validated by Powertools."""
    blob = EphemeralMetrics(namespace=line.namespace, service=line.service)
    if line.dimension is not None:
        name, value = line.dimension
        blob.add_dimensions(service=line.service, **{name: value})
    for metric, total in values.items():
        blob.add_metric(name=metric, unit=MetricUnit.Count, value=total)
    return json.dumps(blob.serialize_metric_set(), separators=(",", ":"))


def _write(lines: dict[_Line, dict[str, int]]) -> None:
    if not lines or is_metrics_disabled():
        return
    try:
        text = "".join(_emf_line(line, values) + "\n" for line, values in lines.items())
    except Exception:  # a metric must never fail the run or the invocation that counted it
        log.exception("could not build the EMF metrics", extra={"metrics": {str(k): v for k, v in lines.items()}})
        return
    with _write_lock:
        sys.stdout.write(text)
        sys.stdout.flush()


# Webhooks (core.webhook_outbox.WebhookMetrics): docs/deployment.md, "Webhooks".
WEBHOOK_EVENTS_LOST = "WebhookEventsLost"
WEBHOOKS_DELIVERED = "WebhooksDelivered"
WEBHOOK_ATTEMPTS_FAILED = "WebhookAttemptsFailed"
WEBHOOKS_EXHAUSTED = "WebhooksExhausted"


class PowertoolsWebhookMetrics(PowertoolsRunMetrics):
    def webhook_event_lost(self) -> None:
        self._add(WEBHOOK_EVENTS_LOST, 1)

    def webhook_delivered(self) -> None:
        self._add(WEBHOOKS_DELIVERED, 1)

    def webhook_attempt_failed(self) -> None:
        self._add(WEBHOOK_ATTEMPTS_FAILED, 1)

    def webhook_exhausted(self) -> None:
        self._add(WEBHOOKS_EXHAUSTED, 1)
