"""Transaction conflicts: on DynamoDB a write that meets a transaction in progress on its item is
refused at once (TransactionConflictException, or a cancelled transaction with a TransactionConflict
reason), and botocore does not retry it. A worker's heartbeat and its writer write the run item
side by side, and a cancel writes it too: the run store tries again, a few times."""

from __future__ import annotations

import time
import uuid

import pytest

from devstack.fault_proxy import FaultProxy, FaultRates
from runwire.adapters.dynamodb import CONFLICT_ATTEMPTS, DynamoDBRunStore
from runwire.core.models import EndChunk, Lease, RunRecord, RunRequest, RunStatus, TextChunk, Usage
from runwire.errors import StorageError


def store_through(proxy: FaultProxy, aws_session, table_name: str) -> DynamoDBRunStore:
    return DynamoDBRunStore(aws_session.client("dynamodb", endpoint_url=proxy.url), table_name, time.time)


def new_run() -> RunRecord:
    now = time.time()
    return RunRecord(run_id="run_" + uuid.uuid4().hex, org_id="acme", user_id="u", agent_id="ag_chat",
                     status=RunStatus.QUEUED, request=RunRequest(task="t"), created_at=now, expires_at=int(now) + 600)


def test_a_run_is_claimed_renewed_written_cancelled_and_ended_through_frequent_conflicts(
    moto_endpoint, aws_session, local_resources
):
    proxy = FaultProxy(moto_endpoint, FaultRates.parse("conflict=0.3"), seed=11).start()
    try:
        store = store_through(proxy, aws_session, local_resources.table_name)
        run = new_run()
        store.create_run(run)
        store.claim("acme", run.run_id, lease=Lease("w", time.time() + 30), now=time.time(), expires_at=int(time.time()) + 600)
        for seq in range(1, 31):
            store.append_chunk("acme", run.run_id, seq, TextChunk(text=f" {seq}"), expires_at=int(time.time()) + 600, owner="w")
            if seq % 5 == 0:
                store.renew_lease("acme", run.run_id, lease=Lease("w", time.time() + 30),
                                  live_usage=Usage(model="m", input_tokens=seq, output_tokens=seq))
        store.request_cancel("acme", run.run_id)
        store.finish("acme", run.run_id, RunStatus.CANCELLED, expected=RunStatus.RUNNING, end_seq=31,
                     finished_at=time.time(), usage=None, error=None, owner="w")
        assert proxy.counters()["faults"]["conflict"] > 10
    finally:
        proxy.stop()
    chunks = [c.chunk for c in store_through_moto(aws_session, moto_endpoint, local_resources.table_name)
              .read_chunks("acme", run.run_id, after=0, consistent=True)]
    assert chunks == [TextChunk(text=f" {n}") for n in range(1, 31)] + [EndChunk(status=RunStatus.CANCELLED)]


def store_through_moto(aws_session, endpoint: str, table_name: str) -> DynamoDBRunStore:
    return DynamoDBRunStore(aws_session.client("dynamodb", endpoint_url=endpoint), table_name, time.time)


def test_a_conflict_that_does_not_clear_is_a_storage_error_after_a_bounded_number_of_tries(
    moto_endpoint, aws_session, local_resources
):
    proxy = FaultProxy(moto_endpoint, FaultRates.parse("conflict=1.0")).start()
    try:
        store = store_through(proxy, aws_session, local_resources.table_name)
        with pytest.raises(StorageError):
            store.create_run(new_run())
        assert proxy.counters()["requests"]["dynamodb"] == CONFLICT_ATTEMPTS
    finally:
        proxy.stop()
