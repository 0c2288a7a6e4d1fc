"""What the local stand-in for AWS (an in-process moto server) changes in moto, so that it behaves as
DynamoDB and SQS do where runwire depends on it: transactions (devstack.moto_dynamodb) and deleting
a message received again (devstack.moto_sqs). Applied wherever this repository starts moto."""

from __future__ import annotations

from . import moto_dynamodb, moto_sqs


def apply() -> None:
    moto_dynamodb.apply()
    moto_sqs.apply()
