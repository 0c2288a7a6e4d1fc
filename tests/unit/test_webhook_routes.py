"""`/v1/webhooks` and a run's `webhook` field through the real API app, in process (FastAPI's
TestClient over the in-memory fakes): status codes, error bodies and what is stored."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from runwire.adapters.memory import InMemoryRunQueue, InMemoryRunStore
from runwire.adapters.memory_webhooks import InMemoryWebhookStore
from runwire.adapters.network_targets import NetworkTargetGuard
from runwire.adapters.tokens import JWTVerifier, issue_token
from runwire.core.actions import ActionService
from runwire.core.agents import default_catalog
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.core.webhooks import WebhookService
from runwire.http.api import ApiDependencies, create_api_app

SECRET = "unit-test-secret-0123456789abcdef0123"
PUBLIC = {"hooks.example.com": ["93.184.216.34"], "internal.example.com": ["10.1.2.3"]}


class App:
    def __init__(self, *, delivering: bool = True) -> None:
        self.runs = InMemoryRunStore(time.time)
        self.queue = InMemoryRunQueue()
        self.hooks = InMemoryWebhookStore()
        guard = NetworkTargetGuard(allow_private=False, resolve=lambda host, port: PUBLIC.get(host, []))
        webhooks = WebhookService(self.hooks, guard, time.time, lambda n: uuid.uuid4().bytes * 2,
                                  lambda: uuid.uuid4().hex, max_endpoints=3, delivering=delivering)
        service = RunService(self.runs, self.queue, default_catalog(), RunServicePolicy(), time.time,
                             request_checks=[webhooks.check_run_request], run_preparations=[webhooks.prepare_run])
        actions = ActionService(self.runs, self.queue, time.time, service.get)
        self.client = TestClient(create_api_app(ApiDependencies(service, JWTVerifier(SECRET), actions,
                                                                listing=None, webhooks=webhooks)))

    def headers(self, org: str = "acme") -> dict[str, str]:
        token = issue_token(SECRET, subject="u1", org=org, lifetime_seconds=600, now=time.time())
        return {"Authorization": f"Bearer {token}", "orgid": org}


@pytest.fixture
def app() -> App:
    return App()


def test_registering_an_endpoint_answers_201_with_the_orgs_whsec_secret(app: App) -> None:
    response = app.client.post("/v1/webhooks", json={"url": "https://hooks.example.com/a"}, headers=app.headers())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("we_") and body["url"] == "https://hooks.example.com/a"
    assert body["events"] == ["run.succeeded", "run.failed", "run.cancelled", "run.expired", "run.requires_action"]
    assert body["secret"].startswith("whsec_")
    # ISO 8601, as every createdAt of the API (a run's too), and the time of the registration.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["createdAt"]), body["createdAt"]
    registered = datetime.fromisoformat(body["createdAt"])
    assert abs((datetime.now(UTC) - registered).total_seconds()) < 3600
    secret = app.client.get("/v1/webhooks/secret", headers=app.headers()).json()["secret"]
    assert secret == body["secret"]


def test_listing_shows_the_orgs_endpoints_without_the_secret_and_deleting_removes_one(app: App) -> None:
    created = app.client.post("/v1/webhooks", json={"url": "https://hooks.example.com/a", "events": ["run.failed"]},
                              headers=app.headers()).json()
    app.client.post("/v1/webhooks", json={"url": "https://hooks.example.com/other-org"}, headers=app.headers("beta"))

    listed = app.client.get("/v1/webhooks", headers=app.headers()).json()
    assert listed == {"data": [{"id": created["id"], "url": "https://hooks.example.com/a", "events": ["run.failed"],
                                "createdAt": created["createdAt"]}]}

    assert app.client.delete(f"/v1/webhooks/{created['id']}", headers=app.headers("beta")).status_code == 404
    deleted = app.client.delete(f"/v1/webhooks/{created['id']}", headers=app.headers())
    assert deleted.status_code == 204 and deleted.content == b""
    again = app.client.delete(f"/v1/webhooks/{created['id']}", headers=app.headers())
    assert again.status_code == 404 and again.json()["error"]["code"] == "webhook_not_found"
    assert app.client.get("/v1/webhooks", headers=app.headers()).json() == {"data": []}


@pytest.mark.parametrize("body, code, named", [
    ({"url": "https://hooks.example.com/a", "events": ["run.started"]}, "invalid_request", "events"),
    ({"url": "https://hooks.example.com/a", "secret": "mine"}, "invalid_request", "secret"),
    ({"url": "http://hooks.example.com/a"}, "webhook_target_refused", "https"),
    ({"url": "https://169.254.169.254/latest/meta-data"}, "webhook_target_refused", "link-local"),
    ({"url": "https://internal.example.com/a"}, "webhook_target_refused", "private"),
    ({"url": "https://[::ffff:127.0.0.1]/a"}, "webhook_target_refused", "loopback"),
    ({}, "invalid_request", "url"),
])
def test_a_bad_registration_is_a_400_naming_the_problem_and_stores_nothing(app: App, body, code, named) -> None:
    response = app.client.post("/v1/webhooks", json=body, headers=app.headers())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code and named in response.json()["error"]["message"]
    assert app.hooks.endpoints("acme") == []


def test_an_org_at_its_endpoint_limit_is_refused(app: App) -> None:
    for n in range(3):
        assert app.client.post("/v1/webhooks", json={"url": f"https://hooks.example.com/{n}"},
                               headers=app.headers()).status_code == 201
    response = app.client.post("/v1/webhooks", json={"url": "https://hooks.example.com/4"}, headers=app.headers())
    assert response.status_code == 400 and response.json()["error"]["code"] == "webhook_limit_reached"


def test_webhook_routes_need_a_token(app: App) -> None:
    assert app.client.get("/v1/webhooks").status_code == 401
    assert app.client.post("/v1/webhooks", json={"url": "https://hooks.example.com/a"}).status_code == 401


def test_a_run_whose_webhook_is_a_private_target_is_refused_and_nothing_is_stored_or_queued(app: App) -> None:
    response = app.client.post("/v1/runs", headers=app.headers(),
                               json={"task": "hi", "webhook": {"url": "https://internal.example.com/hook"}})
    assert response.status_code == 400 and response.json()["error"]["code"] == "webhook_target_refused"
    assert app.queue.messages == [] and app.hooks.secret("acme") is None


def test_a_run_with_a_public_webhook_starts_and_its_org_gets_a_secret(app: App) -> None:
    response = app.client.post("/v1/runs", headers=app.headers(),
                               json={"task": "hi", "webhook": {"url": "https://hooks.example.com/hook"}})
    assert response.status_code == 202, response.text
    stored = app.runs.get_run("acme", response.json()["runId"])
    assert stored is not None and stored.request.webhook is not None
    assert stored.request.webhook.url == "https://hooks.example.com/hook"
    assert (app.hooks.secret("acme") or "").startswith("whsec_")


def test_a_start_refused_after_the_webhook_check_creates_no_secret(app: App) -> None:
    # The webhook URL passes; the request is then refused for its size: nothing is written, not even
    # the org's signing secret.
    response = app.client.post("/v1/runs", headers=app.headers(), json={
        "task": "hi", "conversationHistory": [{"role": "user", "content": "x" * 400_000}],
        "webhook": {"url": "https://hooks.example.com/hook"}})
    assert response.status_code == 413, response.text
    assert app.queue.messages == [] and app.hooks.secret("acme") is None


def test_the_secret_route_refuses_the_cookie_and_creates_nothing_for_it(app: App) -> None:
    token = app.headers()["Authorization"].removeprefix("Bearer ")
    app.client.cookies.set("access_token", token)
    refused = app.client.get("/v1/webhooks/secret", headers={"orgid": "acme"})
    assert refused.status_code == 401 and "Bearer" in refused.json()["error"]["message"]
    assert app.hooks.secret("acme") is None
    # The same cookie still lists the endpoints (GETs that hold no secret take it).
    assert app.client.get("/v1/webhooks", headers={"orgid": "acme"}).status_code == 200
    answered = app.client.get("/v1/webhooks/secret", headers=app.headers())
    assert answered.status_code == 200 and answered.json()["secret"] == app.hooks.secret("acme")


def test_a_run_webhook_with_an_unknown_key_is_refused(app: App) -> None:
    response = app.client.post("/v1/runs", headers=app.headers(),
                               json={"task": "hi", "webhook": {"url": "https://hooks.example.com/h", "secret": "x"}})
    assert response.status_code == 400 and "webhook.secret" in response.json()["error"]["message"]


def test_without_an_outbox_webhooks_are_refused_rather_than_never_sent() -> None:
    app = App(delivering=False)
    registration = app.client.post("/v1/webhooks", json={"url": "https://hooks.example.com/a"}, headers=app.headers())
    run = app.client.post("/v1/runs", headers=app.headers(),
                          json={"task": "hi", "webhook": {"url": "https://hooks.example.com/hook"}})
    for response in (registration, run):
        assert response.status_code == 400 and response.json()["error"]["code"] == "webhooks_not_configured"
