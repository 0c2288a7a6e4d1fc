"""Both HTTP apps over the in-memory fakes: the fast in-process tier for status codes, validation
and the OpenAPI document (no moto, no worker; runs stay queued)."""

from __future__ import annotations

import os
import time
import uuid

from fastapi import FastAPI

from runwire.adapters.memory import InMemoryConversationStore, InMemoryRunQueue, InMemoryRunStore
from runwire.adapters.memory_webhooks import InMemoryWebhookStore
from runwire.adapters.network_targets import NetworkTargetGuard
from runwire.adapters.tokens import JWTVerifier, issue_token
from runwire.core.actions import ActionService
from runwire.core.agents import default_catalog
from runwire.core.cursors import CursorSealer
from runwire.core.listing import ListingService
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.core.tailing import PollPolicy
from runwire.core.webhooks import WebhookService
from runwire.http.api import ApiDependencies, create_api_app
from runwire.http.stream import StreamDependencies, create_stream_app
from runwire.wiring import stream_formats

SECRET = "in-memory-test-secret-0123456789abcdef"


def bearer(org: str = "my-org") -> dict[str, str]:
    token = issue_token(SECRET, subject="dev-user", org=org, lifetime_seconds=3600, now=time.time())
    return {"Authorization": f"Bearer {token}", "orgid": org}


def in_memory_apps(store: InMemoryRunStore | None = None) -> tuple[FastAPI, FastAPI]:
    """The API app (which serves the one OpenAPI document) and the stream app; `store` to give
    them one that misbehaves."""
    store = store or InMemoryRunStore(time.time)
    queue = InMemoryRunQueue()
    conversations = InMemoryConversationStore(time.time)
    hooks = WebhookService(InMemoryWebhookStore(), NetworkTargetGuard(allow_private=False, resolve=lambda host, port: []),
                           time.time, os.urandom, lambda: uuid.uuid4().hex, max_endpoints=10, delivering=True)
    runs = RunService(store, queue, default_catalog(), RunServicePolicy(retention_seconds=300), time.time,
                      conversations=conversations, request_checks=[hooks.check_run_request],
                      run_preparations=[hooks.prepare_run])
    listing = ListingService(store, store, conversations, conversations, CursorSealer.from_secret(SECRET))
    actions = ActionService(store, queue, time.time, runs.get)
    verifier = JWTVerifier(SECRET)

    def stream_app() -> FastAPI:
        return create_stream_app(StreamDependencies(
            runs=runs, actions=actions, store=store, verifier=verifier, formats=stream_formats(),
            default_format="runwire", poll_policy=PollPolicy(write_interval=0.05), clock=time.time,
        ))

    api = create_api_app(ApiDependencies(runs, verifier, actions, listing, webhooks=hooks,
                                         stream_routes=lambda: stream_app().routes))
    return api, stream_app()
