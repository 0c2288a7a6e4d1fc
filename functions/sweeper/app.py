"""SweepFunction: on an EventBridge schedule, ends the runs whose client did not answer in time,
and sends a new message to running runs whose worker died and whose message was lost.

A run waiting for its client past ACTION_TIMEOUT_SECONDS ends `expired` (error `action_timed_out`,
usage, end). Readers end the run they look at too; the sweep ends the ones nobody reads. Overlapping
or repeated sweeps are harmless: each run is ended by one conditional write, and losers skip it; a
message too many is a duplicate delivery, which the claim refuses.
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from runwire.adapters.emf_metrics import metrics_per_invocation
from runwire.observability import configure_lambda_logging
from runwire.wiring import build_lost_message_sweeper, build_sweeper

logger = configure_lambda_logging("runwire-sweeper")
sweeper = build_sweeper()
lost_messages = build_lost_message_sweeper()


@logger.inject_lambda_context
@metrics_per_invocation
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: Any) -> dict[str, int]:
    expired = sweeper.sweep()
    requeued = lost_messages.sweep()
    logger.info("sweep done", extra={"expired": expired, "requeued": requeued, "scheduled_at": event.time})
    return {"expired": expired, "requeued": requeued}
