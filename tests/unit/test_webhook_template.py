"""template.yaml's webhook outbox: its queue, its sender function and their permissions agree with
the code (core.webhooks' retry schedule, the functions that end runs)."""

from __future__ import annotations

import pytest

from devstack.resources import load_template
from devstack.template_check import translate
from runwire.core.webhooks import MAX_ATTEMPT_SECONDS, OutboxQueueLimits, RetrySchedule
from runwire.settings import Settings

from .test_template import TEMPLATE, _allows, _statements

WEBHOOK_QUEUE = {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
TABLE = {"Fn::GetAtt": ["RunsTable", "Arn"]}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def translated(template: dict) -> dict:
    return translate(template)


def test_every_function_has_the_outbox_and_the_default_schedule_is_the_specs(template: dict) -> None:
    assert template["Globals"]["Function"]["Environment"]["Variables"]["WEBHOOK_QUEUE_URL"] == {"Ref": "WebhookQueue"}
    assert Settings().webhook_retry_schedule == RetrySchedule()


@pytest.mark.parametrize("function", ["StartRunFunction", "StreamFunction", "WorkerFunction", "SweepFunction"])
def test_every_function_that_ends_or_suspends_runs_may_put_events_on_the_outbox(translated: dict, function: str) -> None:
    statements = _statements(translated, function)
    assert any(_allows(s, "sqs:SendMessage") and s["Resource"] == WEBHOOK_QUEUE for s in statements)
    # Whether the org's endpoints want the event: a Query of the org's webhook items.
    assert any(_allows(s, "dynamodb:Query") and s["Resource"] == TABLE for s in statements)


def test_the_sender_may_do_what_it_does_and_nothing_that_writes_the_table(translated: dict) -> None:
    statements = _statements(translated, "WebhookSenderFunction")
    for action in ("dynamodb:GetItem", "dynamodb:Query"):
        assert any(_allows(s, action) and s["Resource"] == TABLE for s in statements), action
    assert any(_allows(s, "sqs:ChangeMessageVisibility") and s["Resource"] == WEBHOOK_QUEUE for s in statements)
    sends = sorted(str(s["Resource"]) for s in statements if _allows(s, "sqs:SendMessage"))
    assert sends == sorted([str(WEBHOOK_QUEUE), str({"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]})])
    writes = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
    assert not [s for s in statements for action in writes if _allows(s, action)]


def test_the_queue_outlives_the_schedule_and_lets_the_sender_make_every_attempt(template: dict) -> None:
    resources = template["Resources"]
    queue = resources["WebhookQueue"]["Properties"]
    sender = resources["WebhookSenderFunction"]["Properties"]
    schedule = RetrySchedule()
    # Lambda's rule for an SQS event source: the queue's visibility timeout covers the function's.
    assert queue["VisibilityTimeout"] >= sender["Timeout"]
    assert queue["MessageRetentionPeriod"] > sum(schedule.delays) + queue["VisibilityTimeout"] * schedule.attempts
    # The sender dead-letters a delivery after its last attempt; SQS's redrive only after more.
    assert queue["RedrivePolicy"]["maxReceiveCount"] > schedule.attempts
    # What settings check a custom schedule against (at load) is what the template says.
    assert OutboxQueueLimits() == OutboxQueueLimits(max_receive_count=queue["RedrivePolicy"]["maxReceiveCount"],
                                                    retention_seconds=queue["MessageRetentionPeriod"],
                                                    visibility_seconds=queue["VisibilityTimeout"])
    assert sender["Environment"]["Variables"]["WEBHOOK_DEAD_LETTER_QUEUE_URL"] == {"Ref": "WebhookDeadLetterQueue"}
    assert sender["Events"]["WebhookQueue"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_one_slow_receiver_cannot_run_the_sender_out_of_time_for_other_deliveries(template: dict) -> None:
    # A delivery is its own invocation (BatchSize 1): an attempt that takes its whole deadline delays
    # nobody else's, and Lambda never times out a batch and re-sends the deliveries that had succeeded.
    sender = template["Resources"]["WebhookSenderFunction"]["Properties"]
    batch = sender["Events"]["WebhookQueue"]["Properties"]["BatchSize"]
    margin = 30  # the store reads, the visibility change, a cold start's clients
    assert batch == 1
    assert batch * MAX_ATTEMPT_SECONDS + margin <= sender["Timeout"]
    assert float(sender["Environment"]["Variables"]["WEBHOOK_TIMEOUT_SECONDS"]) <= MAX_ATTEMPT_SECONDS
