"""Listing runs and conversations, and deleting conversations: one suite for the in-memory fakes
and the DynamoDB adapters (on a moto server, with the indexes of template.yaml)."""

from __future__ import annotations

import uuid

import pytest

from runwire.adapters.dynamodb import DynamoDBRunStore
from runwire.adapters.dynamodb_conversations import DynamoDBConversationStore
from runwire.adapters.memory import InMemoryConversationStore, InMemoryRunStore
from runwire.core.models import LISTING_PREVIEW_CHARS, RunRecord, RunRequest, RunStatus, Usage
from runwire.errors import ConditionFailedError, InvalidCursorError

from .test_run_store_contract import FakeClock


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request):
    """(run store, conversation store, clock), sharing one table as deployed."""
    clock = FakeClock()
    if request.param == "memory":
        return InMemoryRunStore(clock), InMemoryConversationStore(clock, retention_seconds=1000), clock
    resources = request.getfixturevalue("local_resources")
    client = request.getfixturevalue("dynamodb_client")
    return (DynamoDBRunStore(client, resources.table_name, clock),
            DynamoDBConversationStore(client, resources.table_name, clock, retention_seconds=1000), clock)


def new_org() -> str:
    return "org-" + uuid.uuid4().hex[:12]


def create_runs(store, clock, org, count, *, status=RunStatus.QUEUED, conversation=None, retention=300) -> list[str]:
    """`count` runs, one a second (so their order is known), oldest first."""
    ids = []
    for _ in range(count):
        clock.now += 1
        run = RunRecord(
            run_id="run_" + uuid.uuid4().hex, org_id=org, user_id="u1", agent_id="ag_chat", status=status,
            request=RunRequest(task="hello " * 50, conversation_id=conversation), created_at=clock.now,
            expires_at=int(clock.now) + retention,
        )
        store.create_run(run)
        ids.append(run.run_id)
    return ids


def read_all(list_page, limit):
    """Every page of a listing, following positions: (items, page sizes)."""
    items, sizes, after = [], [], None
    while True:
        page = list_page(limit=limit, after=after)
        items += page.items
        sizes.append(len(page.items))
        if page.next_position is None:
            return items, sizes
        after = page.next_position


def test_runs_are_listed_newest_first_and_pages_cover_each_once(stores):
    store, _, clock = stores
    org = new_org()
    ids = create_runs(store, clock, org, 7)
    items, sizes = read_all(lambda **page: store.list_runs(org, **page), limit=3)
    assert [s.run_id for s in items] == ids[::-1]
    assert sizes == [3, 3, 1]  # no empty last page: the last full page knows it is the last


def test_a_listed_run_is_a_summary_of_the_run_as_it_is_now(stores):
    store, _, clock = stores
    org = new_org()
    (run_id,) = create_runs(store, clock, org, 1, conversation="conv-1")
    store.finish(org, run_id, RunStatus.CANCELLED, expected=RunStatus.QUEUED, end_seq=1, finished_at=clock.now + 2,
                 usage=Usage(model="m", input_tokens=3, output_tokens=4), error=None)
    (summary,) = store.list_runs(org, limit=10).items
    assert (summary.run_id, summary.status, summary.conversation_id, summary.agent_id) == (
        run_id, RunStatus.CANCELLED, "conv-1", "ag_chat")
    assert (summary.created_at, summary.finished_at, summary.usage) == (
        clock.now, clock.now + 2, Usage(model="m", input_tokens=3, output_tokens=4))


def test_a_status_filter_still_fills_its_pages(stores):
    store, _, clock = stores
    org = new_org()
    wanted = []
    for _ in range(4):  # 4 succeeded runs among 24 queued ones
        create_runs(store, clock, org, 6)
        wanted += create_runs(store, clock, org, 1, status=RunStatus.SUCCEEDED)
    items, sizes = read_all(lambda **page: store.list_runs(org, status=RunStatus.SUCCEEDED, **page), limit=3)
    assert [s.run_id for s in items] == wanted[::-1]
    assert sizes == [3, 1]


def test_a_conversation_filter_lists_only_that_conversations_runs(stores):
    store, _, clock = stores
    org = new_org()
    mine = create_runs(store, clock, org, 2, conversation="conv-a")
    create_runs(store, clock, org, 3, conversation="conv-b")
    mine += create_runs(store, clock, org, 1, conversation="conv-a")
    create_runs(store, clock, org, 2)
    items, _ = read_all(lambda **page: store.list_runs(org, conversation_id="conv-a", **page), limit=2)
    assert [s.run_id for s in items] == mine[::-1]
    finished = store.list_runs(org, conversation_id="conv-a", status=RunStatus.SUCCEEDED, limit=5)
    assert (finished.items, finished.next_position) == ([], None)


def test_runs_are_listed_per_org_and_expired_ones_never(stores):
    store, _, clock = stores
    org, other = new_org(), new_org()
    create_runs(store, clock, org, 2, retention=10)
    live = create_runs(store, clock, org, 2, retention=1000)
    create_runs(store, clock, other, 3)
    clock.now += 50  # the first two expired; DynamoDB's TTL has not deleted them yet (nor has moto)
    page = store.list_runs(org, limit=5)
    assert [s.run_id for s in page.items] == live[::-1] and page.next_position is None
    assert store.list_runs(new_org(), limit=5).items == []


def test_a_position_that_no_listing_gave_is_refused(stores):
    store, conversations, _ = stores
    for bad in ("", "nonsense", "123#run_1", "0000000000001#a#b"):
        with pytest.raises(InvalidCursorError):
            store.list_runs(new_org(), limit=5, after=bad)
        with pytest.raises(InvalidCursorError):
            conversations.list_conversations(new_org(), limit=5, after=bad)


def add_turns(conversations, clock, org, conversation, count=1):
    for _ in range(count):
        clock.now += 1
        run_id = "run_" + uuid.uuid4().hex
        conversations.append_turn(org, conversation, run_id=run_id, at=clock.now, user="q", assistant=f"reply {run_id}")
    return run_id


def test_conversations_are_listed_latest_turn_first_with_their_latest_reply(stores):
    _, conversations, clock = stores
    org = new_org()
    for name in ("c-1", "c-2", "c-3", "c-4"):
        add_turns(conversations, clock, org, name)
    last_run = add_turns(conversations, clock, org, "c-2", count=2)  # c-2 is the latest now
    items, sizes = read_all(lambda **page: conversations.list_conversations(org, **page), limit=3)
    assert [c.conversation_id for c in items] == ["c-2", "c-4", "c-3", "c-1"] and sizes == [3, 1]
    assert (items[0].last_run_id, items[0].last_message, items[0].last_message_at) == (
        last_run, f"reply {last_run}", clock.now)


def test_a_late_retry_of_an_older_turn_leaves_the_latest_in_the_listing(stores):
    _, conversations, clock = stores
    org = new_org()
    conversations.append_turn(org, "c-1", run_id="run_new", at=clock.now + 10, user="q", assistant="new")
    conversations.append_turn(org, "c-1", run_id="run_old", at=clock.now, user="q", assistant="old")
    (summary,) = conversations.list_conversations(org, limit=5).items
    assert (summary.last_run_id, summary.last_message) == ("run_new", "new")


def test_a_long_reply_is_listed_by_its_start(stores):
    _, conversations, clock = stores
    org = new_org()
    conversations.append_turn(org, "c-1", run_id="run_1", at=clock.now, user="q", assistant="x" * 5000)
    (summary,) = conversations.list_conversations(org, limit=5).items
    assert summary.last_message == "x" * LISTING_PREVIEW_CHARS


def test_conversations_are_listed_per_org_and_expired_ones_never(stores):
    _, conversations, clock = stores
    org = new_org()
    add_turns(conversations, clock, org, "c-old")
    clock.now += 600
    add_turns(conversations, clock, org, "c-new")
    add_turns(conversations, clock, new_org(), "c-other")
    clock.now += 500  # c-old's turn (retention 1000) has expired, c-new's has not
    assert [c.conversation_id for c in conversations.list_conversations(org, limit=5).items] == ["c-new"]


def test_deleting_a_conversation_deletes_its_messages_pointer_and_listing(stores):
    _, conversations, clock = stores
    org = new_org()
    add_turns(conversations, clock, org, "c-1", count=15)  # 30 messages: more than one batch of deletes
    add_turns(conversations, clock, org, "c-2")
    conversations.replace_active_run(org, "c-1", "run_x", expected=None, expires_at=int(clock.now) + 60)
    assert conversations.delete_conversation(org, "c-1", expected_active="run_x") is True
    assert conversations.recent_messages(org, "c-1", limit=50) == []
    assert conversations.active_run(org, "c-1") is None
    assert [c.conversation_id for c in conversations.list_conversations(org, limit=5).items] == ["c-2"]
    assert len(conversations.recent_messages(org, "c-2", limit=50)) == 2


def test_deleting_an_unknown_or_foreign_conversation_deletes_nothing(stores):
    _, conversations, clock = stores
    org = new_org()
    add_turns(conversations, clock, org, "c-1")
    assert conversations.delete_conversation(org, "c-unknown", expected_active=None) is False
    assert conversations.delete_conversation(new_org(), "c-1", expected_active=None) is False
    assert len(conversations.recent_messages(org, "c-1", limit=50)) == 2
    assert conversations.delete_conversation(org, "c-1", expected_active=None) is True
    assert conversations.delete_conversation(org, "c-1", expected_active=None) is False


def test_a_delete_loses_to_a_run_started_since_the_conversation_was_checked(stores):
    """The pointer goes first, and only if it still names what the caller checked: a run started
    in between keeps the conversation, messages and all."""
    _, conversations, clock = stores
    org = new_org()
    add_turns(conversations, clock, org, "c-1")
    conversations.replace_active_run(org, "c-1", "run_checked", expected=None, expires_at=int(clock.now) + 60)
    conversations.replace_active_run(org, "c-1", "run_new", expected="run_checked", expires_at=int(clock.now) + 60)
    with pytest.raises(ConditionFailedError):
        conversations.delete_conversation(org, "c-1", expected_active="run_checked")
    assert conversations.active_run(org, "c-1") == "run_new"
    assert len(conversations.recent_messages(org, "c-1", limit=50)) == 2


def test_a_filtered_page_that_reads_past_its_bound_ends_early_with_a_cursor_that_goes_on(
    local_resources, dynamodb_client, monkeypatch
):
    # DynamoDB's adapter only: a rare status must cost several requests, not one that reads an org's
    # whole index. The fake reads no index, so it has no such bound.
    from runwire.adapters import dynamodb

    monkeypatch.setattr(dynamodb, "MAX_LISTING_READS", 8)
    clock = FakeClock()
    store = DynamoDBRunStore(dynamodb_client, local_resources.table_name, clock)
    org = new_org()
    wanted = create_runs(store, clock, org, 1, status=RunStatus.SUCCEEDED)
    create_runs(store, clock, org, 20)
    first = store.list_runs(org, limit=1, status=RunStatus.SUCCEEDED)
    assert first.items == [] and first.next_position is not None  # 10 read (2, then 8): past the bound
    items, sizes = read_all(lambda **page: store.list_runs(org, status=RunStatus.SUCCEEDED, **page), limit=1)
    assert [s.run_id for s in items] == wanted and sizes[-1] == 1
