"""One suite, two adapters: the in-memory webhook store behaves as the DynamoDB one (on a moto server)."""

from __future__ import annotations

import threading
import uuid

import pytest

from runwire.adapters.dynamodb_webhooks import DynamoDBWebhookStore
from runwire.adapters.memory_webhooks import InMemoryWebhookStore
from runwire.core.webhooks import WebhookEndpoint, WebhookEventType, new_secret
from runwire.errors import ConditionFailedError


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        return InMemoryWebhookStore()
    resources = request.getfixturevalue("local_resources")
    return DynamoDBWebhookStore(request.getfixturevalue("dynamodb_client"), resources.table_name, lambda: 1e9)


def new_org() -> str:
    return "org-" + uuid.uuid4().hex[:12]


def endpoint(org: str, n: int, events=(WebhookEventType.RUN_SUCCEEDED,)) -> WebhookEndpoint:
    return WebhookEndpoint(endpoint_id=f"we_{n}_{uuid.uuid4().hex[:6]}", org_id=org, url=f"https://h{n}.example.com/x",
                           events=list(events), created_at=1_000.0 + n)


def test_an_orgs_secret_is_the_first_candidate_and_stays(store) -> None:
    org = new_org()
    first, second = new_secret(b"a" * 32), new_secret(b"b" * 32)
    assert store.secret(org) is None
    assert store.ensure_secret(org, first) == first
    assert store.ensure_secret(org, second) == first
    assert store.secret(org) == first


def test_registering_an_endpoint_creates_the_secret_or_answers_the_existing_one(store) -> None:
    org = new_org()
    created = store.add_endpoint(endpoint(org, 1), limit=10, secret_candidate=new_secret(b"c" * 32))
    again = store.add_endpoint(endpoint(org, 2), limit=10, secret_candidate=new_secret(b"d" * 32))
    assert created == again == store.secret(org) == new_secret(b"c" * 32)


def test_endpoints_read_back_oldest_first_and_per_org(store) -> None:
    org, other = new_org(), new_org()
    stored = [endpoint(org, 2, events=list(WebhookEventType)), endpoint(org, 1)]
    for item in stored:
        store.add_endpoint(item, limit=10, secret_candidate=new_secret(b"e" * 32))
    store.add_endpoint(endpoint(other, 3), limit=10, secret_candidate=new_secret(b"f" * 32))

    assert store.endpoints(org) == [stored[1], stored[0]]
    assert store.endpoint(org, stored[0].endpoint_id) == stored[0]
    assert store.endpoint(other, stored[0].endpoint_id) is None


def test_an_org_cannot_pass_its_limit_and_a_delete_makes_room(store) -> None:
    org = new_org()
    kept = [endpoint(org, n) for n in range(3)]
    for item in kept:
        store.add_endpoint(item, limit=3, secret_candidate=new_secret(b"g" * 32))
    with pytest.raises(ConditionFailedError):
        store.add_endpoint(endpoint(org, 9), limit=3, secret_candidate=new_secret(b"g" * 32))
    assert len(store.endpoints(org)) == 3

    assert store.delete_endpoint(org, kept[0].endpoint_id) is True
    assert store.delete_endpoint(org, kept[0].endpoint_id) is False
    store.add_endpoint(endpoint(org, 9), limit=3, secret_candidate=new_secret(b"g" * 32))
    assert len(store.endpoints(org)) == 3


def test_concurrent_registrations_never_pass_the_limit(store) -> None:
    org, limit = new_org(), 4
    outcomes: list[bool] = []

    def register(n: int) -> None:
        try:
            store.add_endpoint(endpoint(org, n), limit=limit, secret_candidate=new_secret(bytes([n]) * 32))
            outcomes.append(True)
        except ConditionFailedError:
            outcomes.append(False)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(store.endpoints(org)) == outcomes.count(True) <= limit


def test_deleting_an_unknown_endpoint_is_false(store) -> None:
    assert store.delete_endpoint(new_org(), "we_missing") is False


def test_webhook_items_carry_none_of_a_run_items_index_attributes(local_resources, dynamodb_client) -> None:
    # A runs index keyed on a run item's attributes (orgId, createdAt, status…) must never hold them.
    store = DynamoDBWebhookStore(dynamodb_client, local_resources.table_name, lambda: 1e9)
    org = new_org()
    store.add_endpoint(endpoint(org, 1), limit=10, secret_candidate=new_secret(b"h" * 32))
    items = dynamodb_client.query(TableName=local_resources.table_name, KeyConditionExpression="pk = :pk",
                                  ExpressionAttributeValues={":pk": {"S": f"WEBHOOKS#{org}"}})["Items"]
    run_attributes = {"orgId", "createdAt", "status", "runId", "expiresAt", "waitPk", "leasePk"}
    assert len(items) == 2 and all(not run_attributes & item.keys() for item in items)
