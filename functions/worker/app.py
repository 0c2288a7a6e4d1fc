"""WorkerFunction: runs queued agent runs from SQS, reporting partial batch failures."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from runwire.adapters.emf_metrics import metrics_per_invocation
from runwire.core.models import RunMessage
from runwire.observability import configure_lambda_logging
from runwire.wiring import build_worker, load_settings, message_delivery

logger = configure_lambda_logging("runwire-worker")
settings = load_settings()
worker = build_worker(settings)


def process_record(record: SQSRecord) -> str:
    message = RunMessage.model_validate_json(record.body)
    # Keys of this thread's context only: invocations side by side in one process (the local event
    # source mapping) each log their own run id.
    with logger.append_context_keys(correlation_id=message.run_id):
        outcome = worker.process(message, message_delivery(settings, record.receipt_handle))
        logger.info("message handled", extra={"outcome": outcome.value,
                                               "receive_count": record.attributes.approximate_receive_count})
    return outcome.value


@logger.inject_lambda_context
@metrics_per_invocation
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A processor per invocation: it keeps the batch's successes and failures, and invocations may
    # run side by side in one process (the local event source mapping does), so sharing one would
    # report another invocation's failures as this one's.
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=process_record, processor=processor, context=context)
