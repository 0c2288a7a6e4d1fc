"""Create the stateful AWS resources of `template.yaml` on any endpoint (a moto server, LocalStack).

The schema is read from the template itself, never restated here, so the local stack and the
deployed one cannot drift (the aws-samples serverless-test-samples habit). Resources are found
by type and role, not by logical id, so renaming them in the template breaks nothing:

- the one `AWS::DynamoDB::Table`;
- the `AWS::SQS::Queue` the functions' `RUN_QUEUE_URL` names (`!Ref`) is the run queue, the one
  their `WEBHOOK_QUEUE_URL` names is the webhook outbox, and the queue each one's
  `RedrivePolicy.deadLetterTargetArn` points at is its dead-letter queue;
- the one `AWS::S3::Bucket`.

Names come from `name_prefix`; a `TableName`/`QueueName`/`BucketName` in the template is ignored
so that several local stacks can share one endpoint. Every call converges the endpoint on the
template: existing resources are reused and their settings re-applied, so it is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import boto3
import yaml
from botocore.exceptions import ClientError

TABLE_TYPE = "AWS::DynamoDB::Table"
QUEUE_TYPE = "AWS::SQS::Queue"
BUCKET_TYPE = "AWS::S3::Bucket"

# CreateTable accepts these CloudFormation properties as they are.
_TABLE_CREATE_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
)
# CloudFormation queue properties that are SQS queue attributes of the same name.
_QUEUE_ATTRIBUTE_PROPERTIES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
)
# What devstack reads of each resource; other properties (Tags, names...) are never resolved.
_TABLE_PROPERTIES = (*_TABLE_CREATE_PROPERTIES, "TimeToLiveSpecification")
_QUEUE_PROPERTIES = (*_QUEUE_ATTRIBUTE_PROPERTIES, "RedrivePolicy")
_BUCKET_PROPERTIES = ("BucketEncryption", "PublicAccessBlockConfiguration")


class TemplateShapeError(ValueError):
    """The template does not have the resources devstack expects, or uses what it cannot resolve."""


@dataclass(frozen=True)
class LocalResources:
    table_name: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    bucket_name: str
    webhook_queue_url: str | None = None
    webhook_dead_letter_queue_url: str | None = None


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub`...) as the
    long-form dicts (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`) that samtranslator and cfn-lint expect.

    Timestamps are not resolved: CloudFormation reads an unquoted `2010-09-09` as a string.
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[Any, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_short_form(loader: CloudFormationLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]

    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # `!GetAtt Res.Attr.Sub` names attribute `Attr.Sub` of `Res`: split on the first dot only.
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_short_form)


def load_template(path: str | Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM template, with short-form intrinsics turned into long form."""
    with open(path, encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=CloudFormationLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateShapeError(f"{path}: not a CloudFormation template (no Resources mapping)")
    return template


def create_local_resources(
    template: Mapping[str, Any],
    session: boto3.session.Session,
    endpoint_url: str,
    name_prefix: str = "runwire",
) -> LocalResources:
    """Create (or reuse) the template's table, queues and bucket on `endpoint_url`."""
    resources: Mapping[str, Any] = template["Resources"]
    table_id = _single_of_type(resources, TABLE_TYPE)
    bucket_id = _single_of_type(resources, BUCKET_TYPE)
    parameters = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}

    sqs = session.client("sqs", endpoint_url=endpoint_url)
    queue_url, dead_letter_queue_url = _ensure_queue_pair(
        sqs, resources, _queue_named_by(template, "RUN_QUEUE_URL"), f"{name_prefix}-run", parameters)
    webhook_queue_id = _queue_named_by(template, "WEBHOOK_QUEUE_URL", required=False)
    webhook_queue_url, webhook_dead_letter_queue_url = (None, None) if webhook_queue_id is None else \
        _ensure_queue_pair(sqs, resources, webhook_queue_id, f"{name_prefix}-webhook", parameters)

    table_name = f"{name_prefix}-runs"
    _ensure_table(
        session.client("dynamodb", endpoint_url=endpoint_url),
        table_name,
        _used_properties(resources[table_id], _TABLE_PROPERTIES, parameters),
    )

    bucket_name = f"{name_prefix}-files".lower()
    _ensure_bucket(
        session.client("s3", endpoint_url=endpoint_url),
        bucket_name,
        session.region_name,
        _used_properties(resources[bucket_id], _BUCKET_PROPERTIES, parameters),
    )

    return LocalResources(
        table_name=table_name,
        queue_url=queue_url,
        queue_arn=_queue_arn(sqs, queue_url),
        dead_letter_queue_url=dead_letter_queue_url,
        bucket_name=bucket_name,
        webhook_queue_url=webhook_queue_url,
        webhook_dead_letter_queue_url=webhook_dead_letter_queue_url,
    )


def _queue_named_by(template: Mapping[str, Any], variable: str, *, required: bool = True) -> str | None:
    """The logical id of the queue that the functions' environment variable `variable` is a `Ref` to."""
    environments = [template.get("Globals", {}).get("Function", {}).get("Environment", {})]
    environments += [resource.get("Properties", {}).get("Environment", {})
                     for resource in template["Resources"].values() if resource.get("Type") == "AWS::Serverless::Function"]
    named = {value["Ref"] for environment in environments
             if isinstance(value := environment.get("Variables", {}).get(variable), dict) and list(value) == ["Ref"]}
    queues = sorted(q for q in named if template["Resources"].get(q, {}).get("Type") == QUEUE_TYPE)
    if len(queues) > 1 or (required and not queues):
        raise TemplateShapeError(f"expected one {QUEUE_TYPE} named by {variable} (!Ref), found {queues}")
    return queues[0] if queues else None


def _ensure_queue_pair(sqs: Any, resources: Mapping[str, Any], queue_id: str, name: str,
                       parameters: Mapping[str, Any]) -> tuple[str, str]:
    """A queue and its dead-letter queue: (queue URL, dead-letter queue URL)."""
    dead_letter_queue_id = _dead_letter_queue_of(resources, queue_id)
    dead_letter_queue_url = _ensure_queue(
        sqs, f"{name}-dlq", _used_properties(resources[dead_letter_queue_id], _QUEUE_PROPERTIES, parameters))
    queue_url = _ensure_queue(
        sqs,
        f"{name}-queue",
        _used_properties(resources[queue_id], _QUEUE_PROPERTIES, parameters,
                         {(dead_letter_queue_id, "Arn"): _queue_arn(sqs, dead_letter_queue_url)}),
    )
    return queue_url, dead_letter_queue_url


def _single_of_type(resources: Mapping[str, Any], resource_type: str) -> str:
    found = [logical_id for logical_id, resource in resources.items() if resource.get("Type") == resource_type]
    if len(found) != 1:
        raise TemplateShapeError(f"expected exactly one {resource_type}, found {len(found)}: {found}")
    return found[0]


def _dead_letter_queue_of(resources: Mapping[str, Any], queue_id: str) -> str:
    if "RedrivePolicy" not in resources[queue_id].get("Properties", {}):
        raise TemplateShapeError(f"{queue_id}: expected a RedrivePolicy naming its dead-letter queue")
    target = _redrive_policy(resources[queue_id]["Properties"]["RedrivePolicy"]).get("deadLetterTargetArn")
    if not (isinstance(target, dict) and list(target) == ["Fn::GetAtt"] and target["Fn::GetAtt"][1:] == ["Arn"]):
        raise TemplateShapeError(f"{queue_id}: deadLetterTargetArn must be !GetAtt <queue>.Arn, got {target!r}")
    dead_letter_queue_id = target["Fn::GetAtt"][0]
    if resources.get(dead_letter_queue_id, {}).get("Type") != QUEUE_TYPE:
        raise TemplateShapeError(f"{queue_id}: deadLetterTargetArn names {dead_letter_queue_id}, not a {QUEUE_TYPE}")
    return str(dead_letter_queue_id)


def _redrive_policy(value: Any) -> dict[str, Any]:
    # CloudFormation takes the policy as an object or as its JSON text.
    return json.loads(value) if isinstance(value, str) else dict(value)


def _used_properties(
    resource: Mapping[str, Any],
    names: tuple[str, ...],
    parameters: Mapping[str, Any],
    attributes: Mapping[tuple[str, str], Any] | None = None,
) -> dict[str, Any]:
    properties = resource.get("Properties", {})
    return {name: _resolve(properties[name], parameters, attributes or {}) for name in names if name in properties}


def _resolve(value: Any, parameters: Mapping[str, Any], attributes: Mapping[tuple[str, str], Any]) -> Any:
    """Resolve the few intrinsics a stateful resource's properties may use locally: `Ref` to a
    parameter (its Default) and `Fn::GetAtt` to a resource created just before."""
    if isinstance(value, list):
        return [_resolve(item, parameters, attributes) for item in value]
    if not isinstance(value, dict):
        return value
    if list(value) == ["Ref"] and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    if list(value) == ["Fn::GetAtt"] and tuple(value["Fn::GetAtt"]) in attributes:
        return attributes[tuple(value["Fn::GetAtt"])]
    if len(value) == 1 and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
        raise TemplateShapeError(f"devstack cannot resolve {value!r} in a stateful resource's properties")
    return {key: _resolve(item, parameters, attributes) for key, item in value.items()}


def _queue_attributes(properties: Mapping[str, Any]) -> dict[str, str]:
    attributes = {name: _attribute_text(properties[name]) for name in _QUEUE_ATTRIBUTE_PROPERTIES if name in properties}
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = json.dumps(_redrive_policy(properties["RedrivePolicy"]))
    return attributes


def _attribute_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _ensure_queue(sqs: Any, name: str, properties: Mapping[str, Any]) -> str:
    attributes = _queue_attributes(properties)
    if attributes.get("FifoQueue") == "true":
        name = f"{name}.fifo"
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    # FifoQueue cannot be changed after creation; everything else is re-applied.
    mutable = {key: text for key, text in attributes.items() if key != "FifoQueue"}
    if mutable:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
    return url


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _ensure_table(dynamodb: Any, name: str, properties: Mapping[str, Any]) -> None:
    arguments = {key: properties[key] for key in _TABLE_CREATE_PROPERTIES if key in properties}
    try:
        dynamodb.create_table(TableName=name, **arguments)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        # Real DynamoDB rejects enabling TTL twice, so only ask when it is not on yet.
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )


def _ensure_bucket(s3: Any, name: str, region: str | None, properties: Mapping[str, Any]) -> None:
    arguments: dict[str, Any] = {"Bucket": name}
    # us-east-1 is the one region that rejects an explicit LocationConstraint.
    if region and region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**arguments)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise

    encryption = properties.get("BucketEncryption")
    if encryption:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        rules = [
            {
                ("ApplyServerSideEncryptionByDefault" if key == "ServerSideEncryptionByDefault" else key): value
                for key, value in rule.items()
            }
            for rule in encryption["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    public_access_block = properties.get("PublicAccessBlockConfiguration")
    if public_access_block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=public_access_block)
