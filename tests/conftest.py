"""Shared fixtures: a moto server over real HTTP, with the resources of template.yaml created from
the template itself (so tests and template cannot drift)."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from devstack.resources import create_local_resources, load_template

ROOT = Path(__file__).resolve().parent.parent

# No test may reach real AWS, whatever the developer's shell has configured.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    from devstack import moto_fidelity

    moto_fidelity.apply()  # transactions and deletes as DynamoDB and SQS do them
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_session():
    return boto3.session.Session(region_name="us-east-1")


@pytest.fixture(scope="session")
def local_resources(moto_endpoint, aws_session):
    return create_local_resources(load_template(ROOT / "template.yaml"), aws_session, moto_endpoint, name_prefix="test")


@pytest.fixture(scope="session")
def dynamodb_client(moto_endpoint, aws_session):
    return aws_session.client("dynamodb", endpoint_url=moto_endpoint)


@pytest.fixture(scope="session")
def sqs_client(moto_endpoint, aws_session):
    return aws_session.client("sqs", endpoint_url=moto_endpoint)
