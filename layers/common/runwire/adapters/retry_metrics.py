"""Counting storage retries: botocore retries throttling and transient errors inside each call, out of
the core's sight, so a hook on the client's `needs-retry` event counts the faults it meets.

Every attempt that ends in a throttle, a 5xx or no answer at all counts once (`StorageRetries`):
all but the last of a call's failed attempts are retried, up to the client's bound (wiring.py).
"""

from __future__ import annotations

from typing import Any

from ..core.metrics import RunMetrics

THROTTLING_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "Throttling", "TooManyRequestsException", "RequestThrottled", "SlowDown",
})


def is_transient_fault(response: tuple[Any, dict[str, Any]] | None, caught_exception: BaseException | None) -> bool:
    if caught_exception is not None:
        return True
    if response is None:
        return False
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return http.status_code >= 500 or code in THROTTLING_CODES


def count_storage_retries(client: Any, metrics: RunMetrics) -> None:
    """Count, on `client`, every attempt that met a transient fault."""

    def attempt_ended(response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
        if is_transient_fault(response, caught_exception):
            metrics.storage_retried()

    client.meta.events.register(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}", attempt_ended)
