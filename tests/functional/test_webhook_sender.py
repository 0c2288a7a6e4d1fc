"""WebhookSenderFunction's handler with its sample event (events/webhook_sender.json), its queues and
table on a moto server built from template.yaml, and a real HTTP receiver on this machine."""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from devstack.worker_loop import LocalLambdaContext, sqs_event
from runwire.adapters.dynamodb_webhooks import DynamoDBWebhookStore
from runwire.core.webhooks import WebhookEndpoint, WebhookEventType, new_secret
from tests.webhook_receiver import WebhookReceiver

EVENTS = Path(__file__).resolve().parents[2] / "events"
SECRET = new_secret(b"functional-webhook-secret-bytes!")


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def sender(local_resources, moto_endpoint, dynamodb_client) -> Iterator[Any]:
    saved = dict(os.environ)
    os.environ.update({
        "AWS_ENDPOINT_URL": moto_endpoint,
        "RUNS_TABLE_NAME": local_resources.table_name,
        "WEBHOOK_QUEUE_URL": local_resources.webhook_queue_url,
        "WEBHOOK_DEAD_LETTER_QUEUE_URL": local_resources.webhook_dead_letter_queue_url,
        "ALLOW_PRIVATE_NETWORK_TARGETS": "true",  # the receiver is on 127.0.0.1
        "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0,1",
        "WEBHOOK_TIMEOUT_SECONDS": "5",
    })
    DynamoDBWebhookStore(dynamodb_client, local_resources.table_name, time.time).ensure_secret("my-org", SECRET)
    yield importlib.reload(importlib.import_module("functions.webhook_sender.app"))
    os.environ.clear()
    os.environ.update(saved)


def drain(sqs, queue_url: str, *, expect: int, wait_seconds: int = 10) -> list[dict[str, Any]]:
    """Receive until `expect` messages came (or `wait_seconds` of long polls found no more)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    while len(messages) < expect and time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                       AttributeNames=["All"])
        messages.extend(response.get("Messages", []))
    return messages


def invoke(sender, messages: list[dict[str, Any]], queue_arn: str = "arn:aws:sqs:us-east-1:000000000000:q") -> dict:
    return sender.handler(sqs_event(messages, queue_arn, "us-east-1"), LocalLambdaContext())


def test_an_event_fans_out_and_each_destination_is_retried_on_its_own_until_it_answers_2xx(
    sender, receiver: WebhookReceiver, local_resources, sqs_client, dynamodb_client
) -> None:
    store = DynamoDBWebhookStore(dynamodb_client, local_resources.table_name, time.time)
    store.add_endpoint(WebhookEndpoint(endpoint_id="we_functional", org_id="my-org", url=receiver.url("/endpoint"),
                                       events=[WebhookEventType.RUN_SUCCEEDED], created_at=time.time()),
                       limit=10, secret_candidate=SECRET)
    receiver.answer("/run-hook", 500)  # the run's own URL fails its first attempt
    event = json.loads((EVENTS / "webhook_sender.json").read_text().replace(
        "{{RUN_WEBHOOK_URL}}", receiver.url("/run-hook")))

    fanned = sender.handler(event, LocalLambdaContext())
    assert fanned == {"batchItemFailures": []}
    deliveries = drain(sqs_client, local_resources.webhook_queue_url, expect=2)
    assert sorted(json.loads(m["Body"])["url"] for m in deliveries) == [receiver.url("/endpoint"),
                                                                        receiver.url("/run-hook")]

    first = invoke(sender, deliveries)
    failed = [f["itemIdentifier"] for f in first["batchItemFailures"]]
    assert failed == [m["MessageId"] for m in deliveries if json.loads(m["Body"])["url"].endswith("/run-hook")]
    for message in deliveries:  # what Lambda does with the batch's successes
        if message["MessageId"] not in failed:
            sqs_client.delete_message(QueueUrl=local_resources.webhook_queue_url, ReceiptHandle=message["ReceiptHandle"])

    (retried,) = drain(sqs_client, local_resources.webhook_queue_url, expect=1)
    assert retried["Attributes"]["ApproximateReceiveCount"] == "2"
    assert invoke(sender, [retried]) == {"batchItemFailures": []}

    endpoint_posts, run_posts = receiver.at("/endpoint"), receiver.at("/run-hook")
    assert len(endpoint_posts) == 1 and len(run_posts) == 2  # the good endpoint was never sent it again
    webhook = standardwebhooks.Webhook(SECRET)
    for post in [*endpoint_posts, *run_posts]:
        payload = webhook.verify(post.body, post.headers)
        assert post.headers["webhook-id"] == "run_0123456789abcdef0123456789abcdef_succeeded"
        assert payload["type"] == "run.succeeded" and payload["data"]["runId"] == "run_0123456789abcdef0123456789abcdef"


def test_a_delivery_that_fails_its_last_attempt_goes_to_the_dead_letter_queue(
    sender, receiver: WebhookReceiver, local_resources, sqs_client
) -> None:
    receiver.answer("/always-down", 503, 503)
    event = json.loads((EVENTS / "webhook_sender.json").read_text().replace(
        "{{RUN_WEBHOOK_URL}}", receiver.url("/always-down")).replace("run.succeeded", "run.failed").replace(
        '\\"status\\": \\"succeeded\\"', '\\"status\\": \\"failed\\"').replace("_succeeded", "_failed"))
    assert sender.handler(event, LocalLambdaContext()) == {"batchItemFailures": []}
    (delivery,) = [m for m in drain(sqs_client, local_resources.webhook_queue_url, expect=1)
                   if json.loads(m["Body"])["url"].endswith("/always-down")]

    assert invoke(sender, [delivery])["batchItemFailures"]  # attempt 1 of 2
    (retried,) = drain(sqs_client, local_resources.webhook_queue_url, expect=1)
    assert invoke(sender, [retried]) == {"batchItemFailures": []}  # attempt 2, the last: dead-lettered

    (dead,) = drain(sqs_client, local_resources.webhook_dead_letter_queue_url, expect=1)
    assert json.loads(dead["Body"])["url"] == receiver.url("/always-down")
    assert len(receiver.at("/always-down")) == 2
