"""SQS adapter for the `WebhookOutbox` port (core.webhooks): the outbox queue and its dead-letter queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..core.webhooks import OutboxEvent, WebhookDelivery
from ..errors import ConfigurationError, QueueUnavailableError

SEND_BATCH_LIMIT = 10
"""SendMessageBatch takes at most 10 messages."""


class SQSWebhookOutbox:
    def __init__(self, client: Any, queue_url: str, dead_letter_queue_url: str | None) -> None:
        self._client = client
        self._queue_url = queue_url
        self._dead_letter_queue_url = dead_letter_queue_url

    def send_event(self, event: OutboxEvent) -> None:
        self._send(self._queue_url, event.model_dump_json(by_alias=True, exclude_none=True))

    def send_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        for start in range(0, len(deliveries), SEND_BATCH_LIMIT):
            batch = deliveries[start:start + SEND_BATCH_LIMIT]
            entries = [{"Id": str(index), "MessageBody": d.model_dump_json(by_alias=True, exclude_none=True)}
                       for index, d in enumerate(batch)]
            try:
                response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise QueueUnavailableError("the webhook outbox queue did not accept the deliveries") from exc
            if response.get("Failed"):
                codes = sorted({str(f.get("Code")) for f in response["Failed"]})
                raise QueueUnavailableError(f"the webhook outbox queue refused {len(response['Failed'])} deliveries ({codes})")

    def dead_letter(self, delivery: WebhookDelivery) -> None:
        if not self._dead_letter_queue_url:
            raise ConfigurationError("WEBHOOK_DEAD_LETTER_QUEUE_URL is not set (the sender function's setting)")
        self._send(self._dead_letter_queue_url, delivery.model_dump_json(by_alias=True, exclude_none=True))

    def _send(self, queue_url: str, body: str) -> None:
        try:
            self._client.send_message(QueueUrl=queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailableError("the webhook queue did not accept the message") from exc
