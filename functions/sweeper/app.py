"""SweepFunction: on an EventBridge schedule, ends the runs whose client did not answer in time.

A run waiting for its client past ACTION_TIMEOUT_SECONDS ends `expired` (error `action_timed_out`,
usage, end). Readers end the run they look at too; the sweep ends the ones nobody reads. Overlapping
or repeated sweeps are harmless: each run is ended by one conditional write, and losers skip it.
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from runwire.adapters.emf_metrics import metrics_per_invocation
from runwire.observability import configure_lambda_logging
from runwire.wiring import build_sweeper

logger = configure_lambda_logging("runwire-sweeper")
sweeper = build_sweeper()


@logger.inject_lambda_context
@metrics_per_invocation
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: Any) -> dict[str, int]:
    expired = sweeper.sweep()
    logger.info("sweep done", extra={"expired": expired, "scheduled_at": event.time})
    return {"expired": expired}
