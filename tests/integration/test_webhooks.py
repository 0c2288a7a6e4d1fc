"""Webhooks through the local stack (`make dev`): a real HTTP receiver on this machine, registered as an
org's endpoint and named as runs' `webhook`; every event it gets must verify with the `standardwebhooks`
package and the org's secret, and each transition reaches each destination exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import standardwebhooks

from devstack.readiness import stop
from tests.webhook_receiver import ReceivedWebhook, WebhookReceiver

from .conftest import Stack, start_stack
from .test_waiting_runs import LOCATION_TOOL


@pytest.fixture(scope="module")
def hooked_stack(tmp_path_factory) -> Iterator[Stack]:
    # The receiver listens on 127.0.0.1, so this stack allows private targets; a short retry schedule
    # so a flaky receiver's third attempt comes within seconds.
    stack, process = start_stack(tmp_path_factory, "webhooks", ALLOW_PRIVATE_NETWORK_TARGETS="true",
                                 WEBHOOK_RETRY_SCHEDULE_SECONDS="0,1,1")
    yield stack
    stop(process)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def new_org() -> str:
    return "hooks-" + uuid.uuid4().hex[:10]


def verified(secret: str, posts: list[ReceivedWebhook]) -> list[dict]:
    webhook = standardwebhooks.Webhook(secret)
    return [webhook.verify(post.body, post.headers) for post in posts]


def register(stack: Stack, client, org: str, url: str, **body) -> dict:
    response = client.post(f"{stack.base_url}/v1/webhooks", json={"url": url, **body}, headers=stack.headers(org))
    assert response.status_code == 201, response.text
    return response.json()


def test_a_run_that_waits_then_succeeds_sends_each_event_once_to_the_endpoint_and_to_its_own_url(
    hooked_stack: Stack, client, receiver: WebhookReceiver
) -> None:
    org = new_org()
    endpoint = register(hooked_stack, client, org, receiver.url(f"/{org}/endpoint"))
    run = hooked_stack.start(client, "Where am I? Use get_location.", org=org, clientMcpTools=[LOCATION_TOOL],
                             webhook={"url": receiver.url(f"/{org}/run")})

    waiting = receiver.wait_for(f"/{org}/run", 1)
    assert [p["type"] for p in verified(endpoint["secret"], waiting)] == ["run.requires_action"]
    view = client.get(f"{hooked_stack.base_url}/v1/runs/{run['runId']}", headers=hooked_stack.headers(org)).json()
    (action,) = view["pendingActions"]
    answered = client.post(f"{hooked_stack.base_url}/v1/runs/{run['runId']}/tool-outputs", headers=hooked_stack.headers(org),
                           json={"toolOutputs": [{"toolCallId": action["toolCallId"], "output": {"city": "Lisbon"}}]})
    assert answered.status_code == 202, answered.text

    for destination in ("endpoint", "run"):
        posts = receiver.wait_for(f"/{org}/{destination}", 2)
        payloads = verified(endpoint["secret"], posts)
        assert [p["type"] for p in payloads] == ["run.requires_action", "run.succeeded"]
        assert {p["data"]["runId"] for p in payloads} == {run["runId"]}
        assert payloads[1]["data"]["status"] == "succeeded"
    # Exactly once per transition per destination: a later event has come, and no id came twice.
    other = hooked_stack.start(client, "[[scripted tokens=2]]", org=org)
    receiver.wait_for(f"/{org}/endpoint", 3)
    for destination in ("endpoint", "run"):
        ids = Counter(post.headers["webhook-id"] for post in receiver.at(f"/{org}/{destination}"))
        assert all(count == 1 for count in ids.values()), ids
    assert len(receiver.at(f"/{org}/run")) == 2, "the other run named no webhook"
    assert verified(endpoint["secret"], receiver.at(f"/{org}/endpoint"))[2]["data"]["runId"] == other["runId"]


def test_a_cancelled_run_reports_cancelled_signed_with_the_orgs_secret(
    hooked_stack: Stack, client, receiver: WebhookReceiver
) -> None:
    org = new_org()
    run = hooked_stack.start(client, "[[scripted tokens=2000 delay_ms=20]]", org=org,
                             webhook={"url": receiver.url(f"/{org}/cancelled")})
    response = client.post(f"{hooked_stack.base_url}/v1/runs/{run['runId']}/cancel", headers=hooked_stack.headers(org))
    assert response.status_code == 200, response.text

    (post,) = receiver.wait_for(f"/{org}/cancelled", 1)
    secret = client.get(f"{hooked_stack.base_url}/v1/webhooks/secret", headers=hooked_stack.headers(org)).json()["secret"]
    (payload,) = verified(secret, [post])
    assert payload["type"] == "run.cancelled" and payload["data"] == {
        "runId": run["runId"], "status": "cancelled", "orgId": org}
    assert post.headers["webhook-id"] == f"{run['runId']}_cancelled"


def test_a_receiver_that_fails_twice_gets_the_same_event_on_the_third_attempt(
    hooked_stack: Stack, client, receiver: WebhookReceiver
) -> None:
    org = new_org()
    path = f"/{org}/flaky"
    receiver.answer(path, 500, 503)
    endpoint = register(hooked_stack, client, org, receiver.url(path), events=["run.succeeded"])
    run = hooked_stack.start(client, "[[scripted tokens=3]]", org=org)

    posts = receiver.wait_for(path, 3)
    assert len(posts) == 3
    assert {post.headers["webhook-id"] for post in posts} == {f"{run['runId']}_succeeded"}
    assert {post.body for post in posts} == {posts[0].body}, "every attempt sends the same event"
    payloads = verified(endpoint["secret"], posts)
    assert payloads[-1]["data"]["runId"] == run["runId"]


def test_endpoints_subscribed_to_other_events_get_nothing(hooked_stack: Stack, client, receiver: WebhookReceiver) -> None:
    org = new_org()
    register(hooked_stack, client, org, receiver.url(f"/{org}/failures"), events=["run.failed"])
    register(hooked_stack, client, org, receiver.url(f"/{org}/all"))
    hooked_stack.start(client, "[[scripted tokens=2]]", org=org)

    receiver.wait_for(f"/{org}/all", 1)  # the event has been fanned out by now
    assert receiver.at(f"/{org}/failures") == []


def test_with_private_targets_not_allowed_loopback_urls_are_refused(stack: Stack, client) -> None:
    # The session's default stack: ALLOW_PRIVATE_NETWORK_TARGETS is off, as deployed.
    for url in ("http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://[::ffff:169.254.169.254]/latest"):
        registration = client.post(f"{stack.base_url}/v1/webhooks", json={"url": url}, headers=stack.headers())
        run = client.post(f"{stack.base_url}/v1/runs", json={"task": "hi", "webhook": {"url": url}},
                          headers=stack.headers())
        for response in (registration, run):
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "webhook_target_refused"
    listed = client.get(f"{stack.base_url}/v1/webhooks", headers=stack.headers()).json()
    assert all("127.0.0.1" not in endpoint["url"] for endpoint in listed["data"])
