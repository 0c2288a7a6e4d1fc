"""WorkerFunction: runs queued agent runs from SQS, reporting partial batch failures."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from runwire.core.models import RunMessage
from runwire.observability import configure_lambda_logging
from runwire.wiring import build_worker

logger = configure_lambda_logging("runwire-worker")
worker = build_worker()


def process_record(record: SQSRecord) -> str:
    message = RunMessage.model_validate_json(record.body)
    logger.set_correlation_id(message.run_id)
    outcome = worker.process(message)
    logger.info("message handled", extra={"outcome": outcome.value, "receive_count": record.attributes.approximate_receive_count})
    return outcome.value


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A processor per invocation: it keeps the batch's successes and failures, and invocations may
    # run side by side in one process (the local event source mapping does), so sharing one would
    # report another invocation's failures as this one's.
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=process_record, processor=processor, context=context)
