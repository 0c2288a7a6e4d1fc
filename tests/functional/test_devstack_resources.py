"""devstack.resources builds template.yaml's table, queues and bucket on a moto server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from devstack.resources import LocalResources, create_local_resources, load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
PREFIX = "devstack-test"


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any], session: boto3.session.Session, endpoint_url: str) -> LocalResources:
    first = create_local_resources(template, session, endpoint_url, name_prefix=PREFIX)
    second = create_local_resources(template, session, endpoint_url, name_prefix=PREFIX)
    assert second == first
    return second


def _of_type(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [resource for resource in template["Resources"].values() if resource["Type"] == resource_type]


def test_second_call_reuses_every_resource(
    resources: LocalResources, session: boto3.session.Session, endpoint_url: str
) -> None:
    tables = session.client("dynamodb", endpoint_url=endpoint_url).list_tables()["TableNames"]
    queues = session.client("sqs", endpoint_url=endpoint_url).list_queues(QueueNamePrefix=PREFIX)["QueueUrls"]
    buckets = [b["Name"] for b in session.client("s3", endpoint_url=endpoint_url).list_buckets()["Buckets"]]
    assert [name for name in tables if name.startswith(PREFIX)] == [resources.table_name]
    assert sorted(queues) == sorted([resources.queue_url, resources.dead_letter_queue_url,
                                     resources.webhook_queue_url, resources.webhook_dead_letter_queue_url])
    assert [name for name in buckets if name.startswith(PREFIX)] == [resources.bucket_name]


def test_table_has_template_key_schema_and_ttl_on_expires_at(
    resources: LocalResources, template: dict[str, Any], session: boto3.session.Session, endpoint_url: str
) -> None:
    (table_resource,) = _of_type(template, "AWS::DynamoDB::Table")
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    table = dynamodb.describe_table(TableName=resources.table_name)["Table"]
    assert table["KeySchema"] == table_resource["Properties"]["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        table_resource["Properties"]["AttributeDefinitions"], key=str
    )
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=resources.table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}


def test_run_queue_visibility_timeout_is_the_template_value(
    resources: LocalResources, template: dict[str, Any], session: boto3.session.Session, endpoint_url: str
) -> None:
    run_queue = template["Resources"]["RunQueue"]
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    attributes = sqs.get_queue_attributes(QueueUrl=resources.queue_url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["VisibilityTimeout"]) == run_queue["Properties"]["VisibilityTimeout"]
    assert attributes["QueueArn"] == resources.queue_arn


def test_message_received_more_than_max_receive_count_lands_in_dead_letter_queue(
    resources: LocalResources, template: dict[str, Any], session: boto3.session.Session, endpoint_url: str
) -> None:
    run_queue = template["Resources"]["RunQueue"]
    max_receive_count = run_queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    body = json.dumps({"runId": "run_0123456789abcdef0123456789abcdef", "orgId": "my-org"})
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)

    # VisibilityTimeout=0 makes each receive an immediate failed attempt, as a crashed worker's would be.
    for attempt in range(1, max_receive_count + 1):
        received = sqs.receive_message(QueueUrl=resources.queue_url, VisibilityTimeout=0, WaitTimeSeconds=0)
        assert [m["Body"] for m in received.get("Messages", [])] == [body], f"attempt {attempt}"
    # One receive past maxReceiveCount: SQS moves the message instead of delivering it.
    assert sqs.receive_message(QueueUrl=resources.queue_url, VisibilityTimeout=0).get("Messages", []) == []

    dead = sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in dead.get("Messages", [])] == [body]


def test_bucket_blocks_public_access_and_is_encrypted(
    resources: LocalResources, session: boto3.session.Session, endpoint_url: str
) -> None:
    s3 = session.client("s3", endpoint_url=endpoint_url)
    block = s3.get_public_access_block(Bucket=resources.bucket_name)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    rules = s3.get_bucket_encryption(Bucket=resources.bucket_name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_webhook_outbox_queue_has_the_template_settings_and_its_own_dead_letter_queue(
    resources: LocalResources, template: dict[str, Any], session: boto3.session.Session, endpoint_url: str
) -> None:
    declared = template["Resources"]["WebhookQueue"]["Properties"]
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    assert resources.webhook_queue_url and resources.webhook_dead_letter_queue_url
    attributes = sqs.get_queue_attributes(QueueUrl=resources.webhook_queue_url, AttributeNames=["All"])["Attributes"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=resources.webhook_dead_letter_queue_url,
                                               AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert int(attributes["VisibilityTimeout"]) == declared["VisibilityTimeout"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": declared["RedrivePolicy"]["maxReceiveCount"]}
