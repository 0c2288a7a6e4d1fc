"""Deployment settings, read once per container from the environment.

Secrets are never plain text in a deployed template: `JWT_SECRET_ARN` and
`ANTHROPIC_API_KEY_SECRET_ARN` name Secrets Manager secrets (or SSM SecureString parameters,
written `ssm:/path/to/param`), resolved at cold start by `runwire.adapters.secrets`. The plain
`JWT_SECRET` / `ANTHROPIC_API_KEY` variables are for the local stack and tests.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .core.webhooks import MAX_ATTEMPT_SECONDS, STANDARD_RETRY_SCHEDULE, OutboxQueueLimits, RetrySchedule


class ProviderName(enum.StrEnum):
    ANTHROPIC = "anthropic"
    SCRIPTED = "scripted"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    aws_region: str = Field("us-east-1", alias="AWS_REGION")
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")
    runs_table_name: str = Field("runwire-runs", alias="RUNS_TABLE_NAME")
    run_queue_url: str = Field("", alias="RUN_QUEUE_URL")

    jwt_secret: str | None = Field(None, alias="JWT_SECRET")
    jwt_secret_arn: str | None = Field(None, alias="JWT_SECRET_ARN")

    model_provider: ProviderName = Field(ProviderName.SCRIPTED, alias="MODEL_PROVIDER")
    default_model: str = Field("claude-sonnet-4-5", alias="DEFAULT_MODEL")
    anthropic_api_key: str | None = Field(None, alias="ANTHROPIC_API_KEY")
    anthropic_api_key_secret_arn: str | None = Field(None, alias="ANTHROPIC_API_KEY_SECRET_ARN")
    anthropic_base_url: str | None = Field(None, alias="ANTHROPIC_BASE_URL")
    scripted_token_delay_ms: float = Field(15.0, ge=0, alias="SCRIPTED_TOKEN_DELAY_MS")

    extra_agents: str | None = Field(None, alias="EXTRA_AGENTS")
    """JSON list of the operator's own agents: [{"agentId": "ag_…", "role", "systemPrompt", "tools", …}]."""

    max_run_seconds: float = Field(120.0, gt=0, alias="MAX_RUN_SECONDS")
    stream_retention_seconds: int = Field(300, gt=0, alias="STREAM_RETENTION_SECONDS")
    run_queue_visibility_seconds: int = Field(360, gt=0, alias="RUN_QUEUE_VISIBILITY_SECONDS")
    """The run queue's visibility timeout (template.yaml), so claimed runs outlive a redelivery."""
    action_timeout_seconds: float = Field(3600.0, gt=0, alias="ACTION_TIMEOUT_SECONDS")
    """How long a run may wait for its client (client tool outputs, approvals) before it expires."""
    lease_seconds: float = Field(10.0, gt=0, alias="LEASE_SECONDS")
    """How long a worker's claim holds a run without renewal (renewed every third of it)."""
    message_visibility_seconds: int = Field(20, gt=0, alias="MESSAGE_VISIBILITY_SECONDS")
    """How far ahead a worker keeps its run's message hidden: a dead worker's run is taken over
    about this long after its last renewal."""
    max_attempts: int = Field(3, ge=1, alias="MAX_ATTEMPTS")
    """Workers that may die on one stretch of a run (and attempts at one model call) before it fails."""
    conversation_retention_days: float = Field(30.0, gt=0, alias="CONVERSATION_RETENTION_DAYS")
    chunk_window_ms: float = Field(100.0, gt=0, alias="CHUNK_WINDOW_MS")
    cancel_check_ms: float = Field(500.0, gt=0, alias="CANCEL_CHECK_MS")

    webhook_queue_url: str | None = Field(None, alias="WEBHOOK_QUEUE_URL")
    """The webhook outbox queue; unset: no webhooks (a run's `webhook` and `POST /v1/webhooks` are refused)."""
    webhook_dead_letter_queue_url: str | None = Field(None, alias="WEBHOOK_DEAD_LETTER_QUEUE_URL")
    webhook_retry_schedule_seconds: str = Field(",".join(f"{d:g}" for d in STANDARD_RETRY_SCHEDULE),
                                                alias="WEBHOOK_RETRY_SCHEDULE_SECONDS")
    """Seconds before each delivery attempt: the first is 0 (immediate), each after it the wait after the
    previous attempt failed. Standard Webhooks' schedule by default; refused at load when the webhook
    queue cannot honour it (`OutboxQueueLimits`)."""
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=MAX_ATTEMPT_SECONDS, alias="WEBHOOK_TIMEOUT_SECONDS")
    """One attempt's whole deadline: resolving, connecting, sending and reading the answer's status."""
    webhook_endpoint_cache_seconds: float = Field(30.0, ge=0, alias="WEBHOOK_ENDPOINT_CACHE_SECONDS")
    """How long a process trusts what it read of an org's endpoints when deciding whether a transition
    makes an event at all (an endpoint registered since may miss events for about this long)."""
    allow_private_network_targets: bool = Field(False, alias="ALLOW_PRIVATE_NETWORK_TARGETS")
    """Let webhooks go to private and loopback addresses, and over http: local stacks and tests only."""

    @model_validator(mode="after")
    def _message_reappears_after_the_lease(self) -> Settings:
        if self.message_visibility_seconds <= self.lease_seconds:
            raise ValueError("MESSAGE_VISIBILITY_SECONDS must exceed LEASE_SECONDS: a dead worker's message must "
                             "reappear after its lease has lapsed, or the next worker cannot take the run over")
        return self

    @model_validator(mode="after")
    def _retention_outlives_runs(self) -> Settings:
        if self.stream_retention_seconds < self.max_run_seconds:
            raise ValueError("STREAM_RETENTION_SECONDS must be at least MAX_RUN_SECONDS: a run must stay readable while it runs")
        return self

    @property
    def webhook_retry_schedule(self) -> RetrySchedule:
        return RetrySchedule.parse(self.webhook_retry_schedule_seconds)

    @model_validator(mode="after")
    def _webhook_schedule_parses(self) -> Settings:
        self.webhook_retry_schedule  # noqa: B018 (raises ValueError for a bad schedule)
        return self

    @model_validator(mode="after")
    def _webhook_queue_honours_the_schedule(self) -> Settings:
        refusal = OutboxQueueLimits().refusal(self.webhook_retry_schedule)
        if refusal is not None:
            raise ValueError(f"WEBHOOK_RETRY_SCHEDULE_SECONDS cannot be honoured: {refusal}")
        return self

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        names = {field.alias for field in cls.model_fields.values() if field.alias}
        return cls.model_validate({k: v for k, v in environ.items() if k in names and v != ""})
