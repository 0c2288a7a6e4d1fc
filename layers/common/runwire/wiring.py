"""The composition root: build each function's app or service from `Settings`, once per container."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from .adapters.dynamodb import DynamoDBRunStore
from .adapters.dynamodb_conversations import DynamoDBConversationStore
from .adapters.dynamodb_webhooks import DynamoDBWebhookStore
from .adapters.emf_metrics import DEFAULT_NAMESPACE, DEFAULT_SERVICE, PowertoolsRunMetrics, PowertoolsWebhookMetrics
from .adapters.network_targets import NetworkTargetGuard
from .adapters.retry_metrics import count_storage_retries
from .adapters.sqs import SQSDelivery, SQSRunQueue
from .adapters.sqs_webhooks import SQSWebhookOutbox
from .adapters.tokens import JWTVerifier
from .adapters.webhook_http import HTTPWebhookTransport
from .core.actions import ActionService, WaitSweeper
from .core.agents import AgentCatalog, default_catalog, parse_agent_specs
from .core.chunks import CoalescingPolicy
from .core.cursors import CursorSealer
from .core.lease import LeasePolicy, LostMessageSweeper
from .core.listing import ListingService
from .core.metrics import RunMetrics
from .core.ports import ModelProvider, RunStore
from .core.run_service import RunService, RunServicePolicy
from .core.stepper import ModelRetryPolicy
from .core.tailing import PollPolicy
from .core.tools import default_tools
from .core.webhook_outbox import NotifyingRunStore, WebhookNotifier, WebhookSender
from .core.webhooks import WebhookService
from .core.worker import RunWorker, WorkerPolicy
from .errors import ConfigurationError
from .formats.base import StreamFormat
from .formats.chat_events import CHAT_EVENTS
from .formats.content_final import CONTENT_FINAL
from .formats.runwire_events import RunwireEventsFormat
from .formats.ui_message_stream import UI_MESSAGE_STREAM
from .settings import ProviderName, Settings

if TYPE_CHECKING:
    from .http.stream import StreamDependencies


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_environ(os.environ if environ is None else environ)


@cache
def _aws_session() -> Any:
    # botocore, not boto3: the functions only need clients, and boto3's import (resources,
    # s3transfer) adds about 50 ms to every cold start.
    import botocore.session

    return botocore.session.get_session()


# Storage faults never reach the client: botocore retries throttling (ThrottlingException and
# ProvisionedThroughputExceededException are both in botocore/retries/standard.py's throttled codes)
# and 5xx, a bounded number of times. `total_max_attempts` counts the first try (Config's
# `max_attempts` counts only retries). At the fault suite's rates (throttle 10% + 5xx 1.5%: p = 0.115
# a try) all 8 tries fail with p^8 = 3e-8, once in 30 million DynamoDB calls. A throttle's backoff
# is rand(0, 1) * min(2^i, 20) s: 0.5 s on average for one, 71 s at most for seven. The retry quota
# (500 a client; a retry takes 5 after a throttle, 14 after a 5xx; a success gives it back) only
# grows at those rates: it runs dry only while more than about a quarter of tries keep failing.
#
# Standard, not adaptive, mode: adaptive adds a rate limiter per client, and a process shares one
# DynamoDB client across all its runs, so one hot partition's throttling slows every run's writes;
# under a uniform 10% throttle it sinks to ~5 calls/s (devstack.fault_proxy, 300 puts from 16
# threads: 56 s adaptive, 4 s standard). AWS's SDK reference: adaptive is "appropriate only for
# specialized use-cases" and "not recommended for multi-tenant applications".
#
# A retry after a commit: TransactWriteItems' ClientRequestToken is `"idempotencyToken": true` in
# botocore's data/dynamodb/2012-08-10/service-2.json, so botocore fills it once per call
# (handlers.generate_idempotent_uuid, on before-parameter-build) and every retry resends it;
# DynamoDB answers a token that committed with success and writes nothing (a 10-minute window). A
# conditional PutItem has no token: its retry after a commit fails its own condition.
TOTAL_ATTEMPTS = {"dynamodb": 8}
DEFAULT_TOTAL_ATTEMPTS = 5


@cache
def _aws_client(service: str, region: str, endpoint_url: str | None) -> Any:
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS.get(service, DEFAULT_TOTAL_ATTEMPTS)},
        max_pool_connections=64,
        connect_timeout=3,
        read_timeout=10,
        tcp_keepalive=True,
    )
    client = _aws_session().create_client(service, region_name=region, endpoint_url=endpoint_url, config=config)
    count_storage_retries(client, run_metrics())
    return client


def aws_client(settings: Settings, service: str) -> Any:
    """One client per service per container: clients are thread-safe, and each costs 50-100 ms
    to build (botocore loads the service's model), so the stores share them."""
    return _aws_client(service, settings.aws_region, settings.aws_endpoint_url)


def run_store(settings: Settings) -> RunStore:
    """The runs table; with webhooks configured, every finish and suspend also puts its event on the
    webhook outbox (core.webhook_outbox.NotifyingRunStore)."""
    store = DynamoDBRunStore(aws_client(settings, "dynamodb"), settings.runs_table_name, time.time)
    if not settings.webhook_queue_url:
        return store
    return NotifyingRunStore(store, _webhook_notifier(settings))


# --- webhooks (core.webhooks, core.webhook_outbox) -----------------------------------------------
def webhook_store(settings: Settings) -> DynamoDBWebhookStore:
    return DynamoDBWebhookStore(aws_client(settings, "dynamodb"), settings.runs_table_name, time.time)


def webhook_outbox(settings: Settings) -> SQSWebhookOutbox:
    if not settings.webhook_queue_url:
        raise ConfigurationError("WEBHOOK_QUEUE_URL is not set")
    return SQSWebhookOutbox(aws_client(settings, "sqs"), settings.webhook_queue_url,
                            settings.webhook_dead_letter_queue_url)


def webhook_metrics(environ: Mapping[str, str] | None = None) -> PowertoolsWebhookMetrics:
    environ = os.environ if environ is None else environ
    return PowertoolsWebhookMetrics(namespace=environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
                                    service=environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE)


@cache
def _webhook_notifier(settings: Settings) -> WebhookNotifier:
    """One per process, so its cache of the orgs' endpoints is shared by every store built here."""
    return WebhookNotifier(webhook_store(settings), webhook_outbox(settings), time.time,
                           cache_seconds=settings.webhook_endpoint_cache_seconds, metrics=webhook_metrics())


def network_target_guard(settings: Settings) -> NetworkTargetGuard:
    return NetworkTargetGuard(allow_private=settings.allow_private_network_targets)


def webhook_service(settings: Settings) -> WebhookService:
    return WebhookService(webhook_store(settings), network_target_guard(settings), time.time, secrets.token_bytes,
                          lambda: uuid.uuid4().hex, delivering=bool(settings.webhook_queue_url))


def build_webhook_sender(settings: Settings | None = None) -> WebhookSender:
    settings = settings or load_settings()
    transport = HTTPWebhookTransport(network_target_guard(settings), timeout_seconds=settings.webhook_timeout_seconds)
    return WebhookSender(webhook_store(settings), webhook_outbox(settings), transport, time.time,
                         settings.webhook_retry_schedule, webhook_metrics())


def run_metrics(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> RunMetrics:
    """CloudWatch (EMF) metrics. Powertools' own variables configure them, so `Settings` (taken so
    every factory reads alike) has no say: POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME (the
    `service` dimension) and POWERTOOLS_METRICS_DISABLED. Handlers write what an invocation recorded
    when it ends with `runwire.adapters.emf_metrics.metrics_per_invocation`."""
    environ = os.environ if environ is None else environ
    return PowertoolsRunMetrics(
        namespace=environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
        service=environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE,
    )


def conversation_store(settings: Settings) -> DynamoDBConversationStore:
    return DynamoDBConversationStore(
        aws_client(settings, "dynamodb"),
        settings.runs_table_name,
        time.time,
        retention_seconds=int(settings.conversation_retention_days * 86_400),
    )


def run_service(settings: Settings, store: RunStore | None = None) -> RunService:
    if not settings.run_queue_url:
        raise ConfigurationError("RUN_QUEUE_URL is not set")
    webhooks = webhook_service(settings)
    return RunService(
        store or run_store(settings),
        SQSRunQueue(aws_client(settings, "sqs"), settings.run_queue_url),
        agent_catalog(settings),
        RunServicePolicy(retention_seconds=settings.stream_retention_seconds,
                         queued_run_horizon_seconds=worker_policy(settings).claimed_expiry(0)),
        time.time,
        conversations=conversation_store(settings),
        metrics=run_metrics(settings),
        request_checks=[webhooks.check_run_request],
        run_preparations=[webhooks.prepare_run],
    )


def message_delivery(settings: Settings, receipt_handle: str) -> SQSDelivery:
    return SQSDelivery(aws_client(settings, "sqs"), settings.run_queue_url, receipt_handle)


def agent_catalog(settings: Settings) -> AgentCatalog:
    return default_catalog(parse_agent_specs(settings.extra_agents) if settings.extra_agents else None)


def jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.jwt_secret_arn:
        from .adapters.secrets import resolve_secret

        return resolve_secret(settings.jwt_secret_arn, lambda service: aws_client(settings, service))
    raise ConfigurationError("set JWT_SECRET_ARN (deployed) or JWT_SECRET (local) to verify tokens")


def jwt_verifier(settings: Settings) -> JWTVerifier:
    return JWTVerifier(jwt_secret(settings))


def listing_service(settings: Settings, *, cursor_secret: str) -> ListingService:
    """Listing cursors are sealed with a key derived from `cursor_secret` (the JWT secret: one
    secret fewer to deploy and rotate; rotating it ends the cursors handed out, as it ends tokens).
    Listing only reads, so it reads the runs table itself (no webhook outbox in front)."""
    store = DynamoDBRunStore(aws_client(settings, "dynamodb"), settings.runs_table_name, time.time)
    conversations = conversation_store(settings)
    return ListingService(store, store, conversations, conversations, CursorSealer.from_secret(cursor_secret))


def model_provider(settings: Settings) -> ModelProvider:
    if settings.model_provider is ProviderName.SCRIPTED:
        from .adapters.scripted_provider import ScriptedProvider

        return ScriptedProvider(time.time, token_delay_seconds=settings.scripted_token_delay_ms / 1000)
    from .adapters.anthropic_provider import AnthropicProvider

    api_key = settings.anthropic_api_key
    if not api_key and settings.anthropic_api_key_secret_arn:
        from .adapters.secrets import resolve_secret

        api_key = resolve_secret(settings.anthropic_api_key_secret_arn, lambda service: aws_client(settings, service))
    if not api_key:
        raise ConfigurationError("MODEL_PROVIDER=anthropic needs ANTHROPIC_API_KEY or ANTHROPIC_API_KEY_SECRET_ARN")
    return AnthropicProvider(api_key=api_key, base_url=settings.anthropic_base_url)


def worker_policy(settings: Settings) -> WorkerPolicy:
    return WorkerPolicy(
        default_model=settings.default_model,
        max_run_seconds=settings.max_run_seconds,
        cancel_check_seconds=settings.cancel_check_ms / 1000,
        retention_seconds=settings.stream_retention_seconds,
        redelivery_seconds=settings.run_queue_visibility_seconds,
        action_timeout_seconds=settings.action_timeout_seconds,
        lease=LeasePolicy(lease_seconds=settings.lease_seconds, renew_seconds=settings.lease_seconds / 3,
                          message_visibility_seconds=settings.message_visibility_seconds,
                          max_attempts=settings.max_attempts),
        model_retries=ModelRetryPolicy(max_attempts=settings.max_attempts),
        coalescing=CoalescingPolicy(window_seconds=settings.chunk_window_ms / 1000),
    )


def build_worker(settings: Settings | None = None) -> RunWorker:
    settings = settings or load_settings()
    return RunWorker(
        run_store(settings),
        model_provider(settings),
        agent_catalog(settings),
        default_tools(time.time),
        worker_policy(settings),
        time.time,
        conversations=conversation_store(settings),
        queue=SQSRunQueue(aws_client(settings, "sqs"), settings.run_queue_url),
    )


def build_sweeper(settings: Settings | None = None) -> WaitSweeper:
    """The scheduled sweep: ends the runs whose client did not answer within ACTION_TIMEOUT_SECONDS."""
    settings = settings or load_settings()
    # A waiting run lives until claimed_expiry(its action deadline): past that it is gone.
    horizon = worker_policy(settings).claimed_expiry(0)
    return WaitSweeper(run_store(settings), time.time, horizon_seconds=horizon,
                       retention_seconds=settings.stream_retention_seconds)


def build_lost_message_sweeper(settings: Settings | None = None) -> LostMessageSweeper:
    """The scheduled sweep's second job: a new message for a running run whose worker and message are gone."""
    settings = settings or load_settings()
    policy = worker_policy(settings)
    return LostMessageSweeper(run_store(settings), SQSRunQueue(aws_client(settings, "sqs"), settings.run_queue_url),
                              time.time, policy.lease, horizon_seconds=policy.claimed_expiry(0))


def action_service(settings: Settings, runs: RunService, store: RunStore) -> ActionService:
    return ActionService(store, SQSRunQueue(aws_client(settings, "sqs"), settings.run_queue_url), time.time, runs.get)


def build_api_app(settings: Settings | None = None) -> Any:
    from .http.api import ApiDependencies, create_api_app
    from .http.stream import create_stream_app

    settings = settings or load_settings()
    store = run_store(settings)
    runs = run_service(settings, store)
    secret = jwt_secret(settings)
    verifier, actions = JWTVerifier(secret), action_service(settings, runs, store)
    return create_api_app(
        ApiDependencies(
            runs, verifier, actions, listing_service(settings, cursor_secret=secret),
            webhooks=webhook_service(settings),
            # The one OpenAPI document describes the stream app's routes too (the same objects: no
            # second secret lookup); the stream app is built only when the document is asked for.
            stream_routes=lambda: create_stream_app(stream_dependencies(settings, runs, store, verifier, actions)).routes,
        )
    )


def stream_formats() -> dict[str, StreamFormat]:
    formats: list[StreamFormat] = [RunwireEventsFormat(), UI_MESSAGE_STREAM, CHAT_EVENTS, CONTENT_FINAL]
    return {fmt.name: fmt for fmt in formats}


def stream_dependencies(
    settings: Settings, runs: RunService, store: RunStore, verifier: JWTVerifier, actions: ActionService
) -> StreamDependencies:
    from .http.stream import StreamDependencies

    return StreamDependencies(
        runs=runs,
        actions=actions,
        store=store,
        verifier=verifier,
        formats=stream_formats(),
        default_format=RunwireEventsFormat.name,
        poll_policy=PollPolicy(write_interval=settings.chunk_window_ms / 1000),
        clock=time.time,
    )


def build_stream_app(settings: Settings | None = None) -> Any:
    from .http.stream import create_stream_app

    settings = settings or load_settings()
    store = run_store(settings)
    runs = run_service(settings, store)
    return create_stream_app(
        stream_dependencies(settings, runs, store, jwt_verifier(settings), action_service(settings, runs, store))
    )
