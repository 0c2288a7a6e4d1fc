"""The local stand-in for SweepFunction's EventBridge schedule (template.yaml: `rate(1 minute)`).

A daemon thread in the worker loop's process invokes the sweep function's real handler with an
EventBridge "Scheduled Event" every `SWEEP_INTERVAL_SECONDS` seconds, so `make dev` ends runs left
waiting for their client past ACTION_TIMEOUT_SECONDS as the deployed stack does.

    SWEEP_INTERVAL_SECONDS   default 60, the template's rate; any positive number of seconds
                             (tests use a fraction of one); 0 turns the local sweep off

As in AWS, the first sweep comes one interval after the start, and a failed invocation is logged
and not retried: the next one is the retry (template.yaml: `MaximumRetryAttempts: 0`). Unlike
EventBridge, sweeps never overlap: the next interval starts when an invocation returns.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .worker_loop import LocalLambdaContext

log = logging.getLogger("devstack.schedule")

DEFAULT_SWEEP_INTERVAL_SECONDS = 60.0
LOCAL_ACCOUNT = "000000000000"


def sweep_interval_seconds(environ: Mapping[str, str]) -> float:
    """`SWEEP_INTERVAL_SECONDS` from the environment (0: no sweep); ValueError when it is not a
    finite number of seconds, 0 or more."""
    text = environ.get("SWEEP_INTERVAL_SECONDS", "").strip()
    if not text:
        return DEFAULT_SWEEP_INTERVAL_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"SWEEP_INTERVAL_SECONDS must be a number of seconds, 0 or more (0: no sweep); got {text!r}")
    return seconds


def scheduled_event(rule_arn: str, region: str, now: float) -> dict[str, Any]:
    """The event EventBridge hands a function when its schedule fires (see events/sweep.json)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class LocalSchedule:
    """Invokes `handler` with a scheduled event every `interval` seconds, on a thread of its own."""

    def __init__(
        self,
        handler: Callable[[dict[str, Any], Any], Any],
        interval: float,
        *,
        function_name: str,
        region: str,
        timeout_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._handler = handler
        self._interval = interval
        self._function_name = function_name
        self._region = region
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._rule_arn = f"arn:aws:events:{region}:{LOCAL_ACCOUNT}:rule/{function_name}-Schedule"
        self._stopping = threading.Event()
        self.invocations = 0

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name=f"schedule-{self._function_name}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopping.set()

    def run_forever(self) -> None:
        while not self._stopping.wait(self._interval):
            self.invoke()

    def invoke(self) -> Any:
        """One scheduled invocation: the handler's result, or None when it raised (logged)."""
        self.invocations += 1
        event = scheduled_event(self._rule_arn, self._region, self._clock())
        context = LocalLambdaContext.for_function(self._function_name, timeout_seconds=self._timeout_seconds)
        try:
            return self._handler(event, context)
        except Exception:
            log.exception("scheduled invocation of %s failed; the next one is its retry", self._function_name)
            return None
