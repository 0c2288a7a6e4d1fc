"""Resolve secrets named by reference, once per container: Secrets Manager ARNs or `ssm:` parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ConfigurationError


def resolve_secret(reference: str, client: Callable[[str], Any]) -> str:
    """`arn:...:secretsmanager:...` → the secret's string; `ssm:/name` → the decrypted parameter.

    `client(service)` gives a botocore client: only the one the reference needs is built."""
    try:
        if reference.startswith("ssm:"):
            value = client("ssm").get_parameter(Name=reference[4:], WithDecryption=True)["Parameter"]["Value"]
        elif ":secretsmanager:" in reference:
            value = client("secretsmanager").get_secret_value(SecretId=reference).get("SecretString")
        else:
            raise ConfigurationError(f"not a secret reference (want a Secrets Manager ARN or ssm:/name): {reference!r}")
    except (ClientError, BotoCoreError) as exc:
        raise ConfigurationError(f"could not read the secret {reference!r}: {exc}") from exc
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"the secret {reference!r} is empty or not a string")
    return value
