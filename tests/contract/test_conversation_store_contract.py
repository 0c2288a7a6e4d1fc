"""The conversation store's contract, for the in-memory fake and DynamoDB on a moto server."""

from __future__ import annotations

import uuid

import pytest

from runwire.adapters.dynamodb_conversations import DynamoDBConversationStore
from runwire.adapters.memory import InMemoryConversationStore
from runwire.errors import ConditionFailedError

from .test_run_store_contract import FakeClock


@pytest.fixture(params=["memory", "dynamodb"])
def store_and_clock(request):
    clock = FakeClock()
    if request.param == "memory":
        return InMemoryConversationStore(clock, retention_seconds=1000), clock
    resources = request.getfixturevalue("local_resources")
    client = request.getfixturevalue("dynamodb_client")
    return DynamoDBConversationStore(client, resources.table_name, clock, retention_seconds=1000), clock


def test_turns_come_back_oldest_first_and_limited_to_the_latest(store_and_clock):
    store, clock = store_and_clock
    conversation = "c-" + uuid.uuid4().hex
    for n in range(12):
        store.append_turn("acme", conversation, run_id=f"run_{n:02d}", at=clock.now + n, user=f"q{n}", assistant=f"a{n}")
    recent = store.recent_messages("acme", conversation, limit=20)
    assert [m.content for m in recent] == [x for n in range(2, 12) for x in (f"q{n}", f"a{n}")]
    assert [m.role for m in recent[:2]] == ["user", "assistant"]
    assert recent[-1].run_id == "run_11"


def test_writing_a_turn_twice_stores_it_once(store_and_clock):
    store, clock = store_and_clock
    conversation = "c-" + uuid.uuid4().hex
    for _ in range(2):
        store.append_turn("acme", conversation, run_id="run_1", at=clock.now, user="q", assistant="a")
    assert [m.content for m in store.recent_messages("acme", conversation, limit=20)] == ["q", "a"]


def test_conversations_are_per_org(store_and_clock):
    store, clock = store_and_clock
    conversation = "c-" + uuid.uuid4().hex
    store.append_turn("acme", conversation, run_id="run_1", at=clock.now, user="q", assistant="a")
    store.replace_active_run("acme", conversation, "run_1", expected=None, expires_at=int(clock.now) + 60)
    assert store.recent_messages("other", conversation, limit=20) == []
    assert store.active_run("other", conversation) is None


def test_expired_messages_and_active_run_read_as_gone(store_and_clock):
    store, clock = store_and_clock
    conversation = "c-" + uuid.uuid4().hex
    store.append_turn("acme", conversation, run_id="run_1", at=clock.now, user="q", assistant="a")
    store.replace_active_run("acme", conversation, "run_1", expected=None, expires_at=int(clock.now) + 60)
    assert store.active_run("acme", conversation) == "run_1"
    clock.now += 2000
    assert store.recent_messages("acme", conversation, limit=20) == []
    assert store.active_run("acme", conversation) is None


def test_active_run_is_the_latest_set(store_and_clock):
    store, clock = store_and_clock
    conversation = "c-" + uuid.uuid4().hex
    store.replace_active_run("acme", conversation, "run_1", expected=None, expires_at=int(clock.now) + 60)
    store.replace_active_run("acme", conversation, "run_2", expected="run_1", expires_at=int(clock.now) + 60)
    assert store.active_run("acme", conversation) == "run_2"


def test_the_pointer_moves_only_from_where_it_was_read(store_and_clock):
    """Two starts that both read the conversation free (or pointing at the same run): one wins."""
    store, clock = store_and_clock
    conversation = "c-" + uuid.uuid4().hex
    store.replace_active_run("acme", conversation, "run_1", expected=None, expires_at=int(clock.now) + 60)
    with pytest.raises(ConditionFailedError):
        store.replace_active_run("acme", conversation, "run_x", expected=None, expires_at=int(clock.now) + 60)
    store.replace_active_run("acme", conversation, "run_2", expected="run_1", expires_at=int(clock.now) + 60)
    with pytest.raises(ConditionFailedError):
        store.replace_active_run("acme", conversation, "run_y", expected="run_1", expires_at=int(clock.now) + 60)
    assert store.active_run("acme", conversation) == "run_2"


def test_an_expired_pointer_counts_as_free(store_and_clock):
    store, clock = store_and_clock
    conversation = "c-" + uuid.uuid4().hex
    store.replace_active_run("acme", conversation, "run_1", expected=None, expires_at=int(clock.now) + 60)
    clock.now += 61
    store.replace_active_run("acme", conversation, "run_2", expected=None, expires_at=int(clock.now) + 60)
    assert store.active_run("acme", conversation) == "run_2"
