"""Resolve secrets named by reference at cold start: Secrets Manager ARNs or `ssm:` parameters."""

from __future__ import annotations

from ..errors import ConfigurationError


def resolve_secret(reference: str) -> str:
    """`arn:...:secretsmanager:...` → the secret's string; `ssm:/name` → the decrypted parameter."""
    from aws_lambda_powertools.utilities import parameters

    try:
        if reference.startswith("ssm:"):
            value = parameters.get_parameter(reference[4:], decrypt=True, max_age=300)
        elif ":secretsmanager:" in reference:
            value = parameters.get_secret(reference, max_age=300)
        else:
            raise ConfigurationError(f"not a secret reference (want a Secrets Manager ARN or ssm:/name): {reference!r}")
    except parameters.exceptions.GetParameterError as exc:
        raise ConfigurationError(f"could not read the secret {reference!r}") from exc
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"the secret {reference!r} is empty")
    return value
