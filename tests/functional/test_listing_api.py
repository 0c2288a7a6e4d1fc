"""GET /v1/runs, GET /v1/conversations and DELETE /v1/conversations/{id} in process (FastAPI's
TestClient over the in-memory fakes): status codes, validation, cursors and org scoping. The
full-stack test (tests/integration/test_listing.py) shows the same routes over real HTTP."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from runwire.adapters.memory import InMemoryConversationStore, InMemoryRunQueue, InMemoryRunStore
from runwire.adapters.tokens import JWTVerifier, issue_token
from runwire.core.actions import ActionService
from runwire.core.agents import default_catalog
from runwire.core.cursors import CursorSealer
from runwire.core.listing import ListingService
from runwire.core.models import Caller, RunRequest, RunStatus
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.http.api import ApiDependencies, create_api_app

SECRET = "functional-test-secret-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Api:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = InMemoryRunStore(self.clock)
        self.conversations = InMemoryConversationStore(self.clock, retention_seconds=3600)
        queue = InMemoryRunQueue()
        self.runs = RunService(self.store, queue, default_catalog(), RunServicePolicy(), self.clock,
                               conversations=self.conversations)
        listing = ListingService(self.store, self.store, self.conversations, self.conversations,
                                 CursorSealer.from_secret(SECRET))
        app = create_api_app(ApiDependencies(self.runs, JWTVerifier(SECRET),
                                             ActionService(self.store, queue, self.clock, self.runs.get), listing))
        self.client = TestClient(app)

    def headers(self, org: str = "acme") -> dict[str, str]:
        token = issue_token(SECRET, subject="u1", org=org, lifetime_seconds=600, now=time.time())
        return {"Authorization": f"Bearer {token}", "orgid": org}

    def start(self, org: str = "acme", conversation: str | None = None) -> str:
        self.clock.now += 1
        # No worker runs here: a second run on a conversation queues behind the first (enqueue).
        request = RunRequest(task="hi", conversation_id=conversation, multitask_strategy="enqueue" if conversation else None)
        return self.runs.start(Caller(user_id="u1", org_id=org), request).run_id

    def get(self, path: str, org: str = "acme", **params: object):
        return self.client.get(path, params=params, headers=self.headers(org))


@pytest.fixture
def api() -> Api:
    return Api()


def test_runs_are_listed_newest_first_in_pages_that_follow_their_cursor(api: Api) -> None:
    started = [api.start() for _ in range(5)]
    first = api.get("/v1/runs", limit=2)
    assert first.status_code == 200
    body = first.json()
    assert [r["runId"] for r in body["runs"]] == started[:-3:-1]
    assert set(body["runs"][0]) == {"runId", "agentId", "status", "conversationId", "createdAt", "startedAt",
                                    "finishedAt", "expiresAt", "cancelRequested", "usage", "error"}
    seen = [r["runId"] for r in body["runs"]]
    while body["nextCursor"] is not None:
        body = api.get("/v1/runs", limit=2, cursor=body["nextCursor"]).json()
        seen += [r["runId"] for r in body["runs"]]
    assert seen == started[::-1]


def test_runs_filter_by_status_and_conversation(api: Api) -> None:
    in_conversation = api.start(conversation="conv-1")
    cancelled = api.start()
    api.client.post(f"/v1/runs/{cancelled}/cancel", headers=api.headers())
    api.start()
    only_cancelled = api.get("/v1/runs", status="cancelled").json()["runs"]
    assert [(r["runId"], r["status"]) for r in only_cancelled] == [(cancelled, "cancelled")]
    only_conversation = api.get("/v1/runs", conversationId="conv-1").json()["runs"]
    assert [(r["runId"], r["conversationId"]) for r in only_conversation] == [(in_conversation, "conv-1")]


@pytest.mark.parametrize("params, named", [
    ({"status": "done"}, "status"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
    ({"conversationId": "has#hash"}, "conversationId"), ({"cursor": "not-a-cursor"}, "cursor"),
])
def test_bad_listing_parameters_are_a_400_naming_them(api: Api, params: dict, named: str) -> None:
    response = api.get("/v1/runs", **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] in {"invalid_request", "invalid_cursor"} and named in error["message"]


def test_a_cursor_is_refused_with_other_filters_or_by_another_org(api: Api) -> None:
    for _ in range(3):
        api.start(conversation="conv-1")
    cursor = api.get("/v1/runs", limit=1).json()["nextCursor"]
    assert cursor is not None
    for path, org, params in [("/v1/runs", "globex", {}), ("/v1/runs", "acme", {"status": "queued"}),
                              ("/v1/runs", "acme", {"conversationId": "conv-1"}), ("/v1/conversations", "acme", {})]:
        response = api.get(path, org=org, cursor=cursor, **params)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_cursor"), (path, org, params)
    assert api.get("/v1/runs", cursor=cursor[:-1] + ("A" if cursor[-1] != "A" else "B")).status_code == 400
    assert api.get("/v1/runs", cursor=cursor, limit=5).status_code == 200  # another page size is fine


def test_listings_are_per_org(api: Api) -> None:
    api.start(org="globex", conversation="conv-g")
    api.conversations.append_turn("globex", "conv-g", run_id="run_g", at=api.clock.now, user="q", assistant="a")
    assert api.get("/v1/runs").json() == {"runs": [], "nextCursor": None}
    assert api.get("/v1/conversations").json() == {"conversations": [], "nextCursor": None}
    assert api.client.delete("/v1/conversations/conv-g", headers=api.headers()).status_code == 404
    assert len(api.get("/v1/runs", org="globex").json()["runs"]) == 1


def test_conversations_list_their_latest_reply_and_active_run(api: Api) -> None:
    active = api.start(conversation="conv-1")
    api.conversations.append_turn("acme", "conv-1", run_id="run_earlier", at=api.clock.now - 5, user="q", assistant="hello")
    api.conversations.append_turn("acme", "conv-2", run_id="run_other", at=api.clock.now - 9, user="q", assistant="bye")
    body = api.get("/v1/conversations").json()
    assert [(c["conversationId"], c["lastMessage"], c["lastRunId"], c["activeRunId"]) for c in body["conversations"]] == [
        ("conv-1", "hello", "run_earlier", active), ("conv-2", "bye", "run_other", None)]
    api.client.post(f"/v1/runs/{active}/cancel", headers=api.headers())
    assert api.get("/v1/conversations").json()["conversations"][0]["activeRunId"] is None


def test_deleting_a_conversation_with_a_run_in_progress_is_a_409_and_deletes_nothing(api: Api) -> None:
    api.conversations.append_turn("acme", "conv-1", run_id="run_earlier", at=api.clock.now, user="q", assistant="a")
    active = api.start(conversation="conv-1")
    response = api.client.delete("/v1/conversations/conv-1", headers=api.headers())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conversation_busy" and active in response.json()["error"]["message"]
    assert len(api.get("/v1/conversations/conv-1/messages").json()["messages"]) == 2
    api.client.post(f"/v1/runs/{active}/cancel", headers=api.headers())
    assert api.client.delete("/v1/conversations/conv-1", headers=api.headers()).status_code == 204
    assert api.get("/v1/conversations/conv-1/messages").json()["messages"] == []
    assert api.get("/v1/conversations").json()["conversations"] == []
    assert api.get("/v1/runs", conversationId="conv-1").json()["runs"][0]["runId"] == active  # runs stay
    again = api.client.delete("/v1/conversations/conv-1", headers=api.headers())
    assert (again.status_code, again.json()["error"]["code"]) == (404, "conversation_not_found")


def test_listing_needs_a_token(api: Api) -> None:
    for response in (api.client.get("/v1/runs"), api.client.get("/v1/conversations"),
                     api.client.delete("/v1/conversations/conv-1")):
        assert response.status_code == 401


def test_a_status_filter_on_a_listing_reflects_the_runs_current_status(api: Api) -> None:
    run_id = api.start()
    assert api.get("/v1/runs", status="queued").json()["runs"][0]["runId"] == run_id
    api.store.transition("acme", run_id, RunStatus.CANCELLED)
    assert api.get("/v1/runs", status="queued").json()["runs"] == []
