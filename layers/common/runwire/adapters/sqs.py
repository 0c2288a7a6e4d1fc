"""SQS adapter for the `RunQueue` port."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..core.models import RunMessage
from ..errors import QueueUnavailableError

log = logging.getLogger("runwire.sqs")


class SQSRunQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, message: RunMessage, *, delay_seconds: int = 0) -> None:
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=message.model_dump_json(by_alias=True, exclude_none=True),
                                      DelaySeconds=delay_seconds)
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailableError("the run queue did not accept the run; try again") from exc


class SQSDelivery:
    """The `Delivery` port: one received message, kept hidden with ChangeMessageVisibility.

    The queue's own visibility timeout must be at least the worker function's timeout (Lambda's
    rule for an event source mapping), far longer than a take-over should wait; so the worker
    shortens its message's visibility at once and extends it with each lease renewal.
    """

    def __init__(self, client: Any, queue_url: str, receipt_handle: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._receipt_handle = receipt_handle

    def keep_invisible(self, seconds: int) -> None:
        try:
            self._client.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=self._receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError):
            # The lease, not the message, decides who holds the run: a message that reappears early
            # is a duplicate delivery, which the claim refuses while the lease is renewed.
            log.warning("could not change the visibility of the run's message", exc_info=True)
