"""Secrets by reference, against Secrets Manager and SSM on the moto server."""

from __future__ import annotations

import time
import uuid

import pytest

from runwire.adapters.secrets import resolve_secret
from runwire.adapters.tokens import issue_token
from runwire.errors import ConfigurationError
from runwire.settings import Settings
from runwire.wiring import aws_client, jwt_verifier


@pytest.fixture
def settings(moto_endpoint):
    return Settings.from_environ({"AWS_ENDPOINT_URL": moto_endpoint, "AWS_REGION": "us-east-1"})


def test_a_secrets_manager_arn_resolves_to_its_string(settings, aws_session, moto_endpoint):
    arn = aws_session.client("secretsmanager", endpoint_url=moto_endpoint).create_secret(
        Name=f"runwire/jwt-{uuid.uuid4().hex}", SecretString="s3cret-value")["ARN"]
    assert resolve_secret(arn, lambda service: aws_client(settings, service)) == "s3cret-value"


def test_an_ssm_reference_resolves_to_the_decrypted_parameter(settings, aws_session, moto_endpoint):
    name = f"/runwire/key-{uuid.uuid4().hex}"
    aws_session.client("ssm", endpoint_url=moto_endpoint).put_parameter(Name=name, Value="k3y", Type="SecureString")
    assert resolve_secret(f"ssm:{name}", lambda service: aws_client(settings, service)) == "k3y"


@pytest.mark.parametrize("reference", [
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf",
    "ssm:/runwire/missing",
    "plain-text-is-not-a-reference",
])
def test_a_bad_reference_stops_the_cold_start_with_a_clear_error(settings, reference):
    with pytest.raises(ConfigurationError, match="secret"):
        resolve_secret(reference, lambda service: aws_client(settings, service))


def test_a_deployed_function_verifies_tokens_with_the_key_from_secrets_manager(aws_session, moto_endpoint):
    key = "deployed-key-" + uuid.uuid4().hex
    arn = aws_session.client("secretsmanager", endpoint_url=moto_endpoint).create_secret(
        Name=f"runwire/jwt-{uuid.uuid4().hex}", SecretString=key)["ARN"]
    settings = Settings.from_environ({"AWS_ENDPOINT_URL": moto_endpoint, "JWT_SECRET_ARN": arn})
    token = issue_token(key, subject="u1", org="acme", lifetime_seconds=60, now=time.time())
    assert jwt_verifier(settings).verify(token).subject == "u1"
