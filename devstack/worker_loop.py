"""The local stand-in for Lambda's SQS event source mapping.

Long-polls the run queue and invokes the worker function's real handler with real SQS event
shapes — one record per invocation, as `BatchSize: 1` in template.yaml — on a thread pool that
plays Lambda's concurrency. Records the handler reports in `batchItemFailures` stay on the queue
until their visibility timeout, as with Lambda; the rest are deleted.

It plays WebhookSenderFunction's event source mapping too, on the webhook outbox queue (a thread of
its own), when WEBHOOK_QUEUE_URL is set: a failed attempt stays hidden for the retry schedule's delay.

The same process plays SweepFunction's EventBridge schedule (devstack.schedule): a thread invokes the
sweep function's real handler every SWEEP_INTERVAL_SECONDS (default 60; 0 turns it off).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("devstack.worker")


@dataclass
class LocalLambdaContext:
    """What Powertools reads from a Lambda context object."""

    function_name: str = "runwire-WorkerFunction-local"
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 300
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:runwire-WorkerFunction-local"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/runwire-WorkerFunction-local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @classmethod
    def for_function(cls, function_name: str, *, timeout_seconds: int) -> LocalLambdaContext:
        arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        return cls(function_name=function_name, timeout_seconds=timeout_seconds, invoked_function_arn=arn,
                   log_group_name=f"/aws/lambda/{function_name}")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda hands a function for these received SQS messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": m.get("Attributes", {}).get("SenderId", "000000000000"),
                    "ApproximateFirstReceiveTimestamp": m.get("Attributes", {}).get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        for m in messages]
    }


class EventSourceMapping:
    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, region: str, handler: Any, concurrency: int) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._handler = handler
        self._slots = threading.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lambda")
        self._stopping = threading.Event()
        self.invocations = 0

    def run_forever(self) -> None:
        while not self._stopping.is_set():
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            for message in response.get("Messages", []):
                self._slots.acquire()
                self._pool.submit(self._invoke, message)

    def stop(self) -> None:
        self._stopping.set()

    def _invoke(self, message: dict[str, Any]) -> None:
        try:
            self.invocations += 1
            event = sqs_event([message], self._queue_arn, self._region)
            result = self._handler(event, LocalLambdaContext())
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            if message["MessageId"] in failed:
                log.warning("worker reported message %s as failed; SQS will redeliver it", message["MessageId"])
            else:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        except Exception:
            log.exception("worker invocation crashed; SQS will redeliver the message")
        finally:
            self._slots.release()


def start_sweep_schedule(region: str) -> None:
    """Play SweepFunction's schedule on a thread of this process (devstack.schedule)."""
    from .schedule import LocalSchedule, sweep_interval_seconds

    interval = sweep_interval_seconds(os.environ)
    if interval == 0:
        log.info("SWEEP_INTERVAL_SECONDS=0: runs left waiting for their client expire only when read")
        return
    from functions.sweeper import app as sweeper_function

    # 60: SweepFunction's Timeout in template.yaml.
    LocalSchedule(sweeper_function.handler, interval, function_name="runwire-SweepFunction-local", region=region,
                  timeout_seconds=60).start()
    log.info("sweeping runs left waiting for their client every %g s", interval)


def start_webhook_sender(sqs: Any, region: str) -> None:
    """Play WebhookSenderFunction's event source mapping on a thread of this process."""
    queue_url = os.environ.get("WEBHOOK_QUEUE_URL")
    if not queue_url:
        return
    from functions.webhook_sender import app as webhook_sender_function

    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = EventSourceMapping(sqs, queue_url, queue_arn, region, webhook_sender_function.handler, concurrency=8)
    threading.Thread(target=mapping.run_forever, name="webhook-sender", daemon=True).start()
    log.info("delivering webhooks from %s", queue_url)


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s worker  %(message)s")
    import boto3

    # Importing the function module builds its clients from the environment, as a cold start does.
    from functions.worker import app as worker_function

    region = os.environ.get("AWS_REGION", "us-east-1")
    sqs = boto3.client("sqs", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    queue_url = os.environ["RUN_QUEUE_URL"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = EventSourceMapping(
        sqs, queue_url, queue_arn, region, worker_function.handler, int(os.environ.get("WORKER_CONCURRENCY", "128"))
    )
    start_sweep_schedule(region)
    start_webhook_sender(sqs, region)
    log.info("polling %s", queue_url)
    mapping.run_forever()


if __name__ == "__main__":
    main()
