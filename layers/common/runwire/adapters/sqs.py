"""SQS adapter for the `RunQueue` port."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..core.models import RunMessage
from ..errors import QueueUnavailableError


class SQSRunQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, message: RunMessage) -> None:
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=message.model_dump_json(by_alias=True))
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailableError("the run queue did not accept the run; try again") from exc
