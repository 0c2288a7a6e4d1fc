"""WebhookSenderFunction: the webhook outbox queue's consumer, reporting partial batch failures.

An event becomes one delivery message per destination; a delivery is one signed POST. A failed
attempt hides its message until the retry schedule's next attempt and is reported as a batch item
failure, so SQS hands it out again then (core.webhook_outbox).
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import TypeAdapter

from runwire.adapters.emf_metrics import metrics_per_invocation
from runwire.adapters.sqs import SQSDelivery
from runwire.core.webhook_outbox import Outcome
from runwire.core.webhooks import OutboxMessage
from runwire.errors import WebhookDeliveryError
from runwire.observability import configure_lambda_logging
from runwire.wiring import aws_client, build_webhook_sender, load_settings

logger = configure_lambda_logging("runwire-webhook-sender")
settings = load_settings()
sender = build_webhook_sender(settings)
messages: TypeAdapter[Any] = TypeAdapter(OutboxMessage)


def process_record(record: SQSRecord) -> str:
    message = messages.validate_json(record.body)
    with logger.append_context_keys(correlation_id=message.run_id, webhook_id=message.webhook_id):
        delivery = SQSDelivery(aws_client(settings, "sqs"), settings.webhook_queue_url or "", record.receipt_handle)
        outcome = sender.process(message, attempt=int(record.attributes.approximate_receive_count), delivery=delivery)
    if outcome is Outcome.RETRY:
        # Its visibility is set to the next attempt's delay: a failure report keeps it on the queue.
        raise WebhookDeliveryError(f"webhook {message.webhook_id}: attempt {record.attributes.approximate_receive_count} "
                                   "failed; the queue hands it out again at the next attempt")
    return outcome.value


@logger.inject_lambda_context
@metrics_per_invocation
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A batch whose every attempt failed is still a normal answer: each record's retry is scheduled
    # already (its visibility), and an invocation error would only add noise to the function's Errors.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=process_record, processor=processor, context=context)
