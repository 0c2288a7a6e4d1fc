"""SweepFunction: on an EventBridge schedule, ends the runs whose client did not answer in time,
and sends a new message to running runs whose worker died and whose message was lost.

A run waiting for its client past ACTION_TIMEOUT_SECONDS ends `expired` (error `action_timed_out`,
usage, end). Readers end the run they look at too; the sweep ends the ones nobody reads. Overlapping
or repeated sweeps are harmless: each run is ended by one conditional write, and losers skip it; a
message too many is a duplicate delivery, which the claim refuses.
"""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from runwire.adapters.emf_metrics import metrics_per_invocation
from runwire.observability import configure_lambda_logging
from runwire.wiring import build_lost_message_sweeper, build_sweeper

logger = configure_lambda_logging("runwire-sweeper")
sweeper = build_sweeper()
lost_messages = build_lost_message_sweeper()


def _counted(job: Callable[[], int], name: str) -> int:
    try:
        return job()
    except Exception:
        logger.exception(f"the sweep failed at {name}; the next one tries again")
        return 0


@logger.inject_lambda_context
@metrics_per_invocation
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: Any) -> dict[str, int]:
    # Two jobs, each on its own: one failing must not keep the other from running.
    expired = _counted(sweeper.sweep, "ending overdue waits")
    requeued = _counted(lost_messages.sweep, "re-sending lost messages")
    logger.info("sweep done", extra={"expired": expired, "requeued": requeued, "scheduled_at": event.time})
    return {"expired": expired, "requeued": requeued}
