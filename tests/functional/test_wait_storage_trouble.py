"""`POST /v1/runs/wait` once its run is started: storage trouble while waiting answers 202 with the
run's URLs, not a 503 that a client would retry into a second run (review of issue 11, point 1)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from runwire.adapters.memory import InMemoryRunStore
from runwire.core.models import RunRecord
from runwire.errors import StorageError

from .in_memory_apps import bearer, in_memory_apps


class ReadsFailAfterCreate(InMemoryRunStore):
    """Stores runs, then cannot read them: DynamoDB failing between the start and the wait."""

    def create_run(self, run: RunRecord) -> None:
        super().create_run(run)
        self.reads_fail = True

    def get_run(self, org_id: str, run_id: str) -> RunRecord | None:
        if getattr(self, "reads_fail", False):
            raise StorageError("the table is unavailable")
        return super().get_run(org_id, run_id)


def test_storage_error_while_waiting_answers_202_with_the_started_runs_urls():
    store = ReadsFailAfterCreate(time.time)
    api, _ = in_memory_apps(store)
    with TestClient(api) as client:
        answer = client.post("/v1/runs/wait", json={"task": "Hi", "waitSeconds": 1}, headers=bearer())
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued" and body["runId"].startswith("run_")
    assert body["pollUrl"].endswith(f"/v1/runs/{body['runId']}")
    assert body["streamUrl"].endswith(f"/v1/runs/{body['runId']}/stream")
    store.reads_fail = False
    assert [run.run_id for run in store.list_runs("my-org", limit=10).items] == [body["runId"]], "one run, stored"


def test_storage_error_before_the_run_is_stored_is_still_a_503():
    class CreateFails(InMemoryRunStore):
        def create_run(self, run: RunRecord) -> None:
            raise StorageError("the table is unavailable")

    api, _ = in_memory_apps(CreateFails(time.time))
    with TestClient(api) as client:
        answer = client.post("/v1/runs/wait", json={"task": "Hi", "waitSeconds": 1}, headers=bearer())
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "storage_error", answer.text
