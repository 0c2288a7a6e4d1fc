"""DynamoDB throttling and 5xx never reach the caller: the clients runwire.wiring builds (their real
retry config) against devstack.fault_proxy in front of the moto server and template.yaml's table."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.fault_proxy import COUNTERS_PATH, THROTTLE_CODES, FaultProxy, FaultRates
from runwire import wiring
from runwire.adapters.dynamodb import ITEM_NOT_EXISTS, RUN_SORT_KEY, chunk_sort_key, run_key

# Harsher than the fault suite's 10% / 1% (a quarter of all tries fail), yet inside what standard
# mode's retry quota sustains for a few hundred calls: past about 30% failing tries it runs dry and
# fails fast, by design.
FAULTS = "throttle=0.18,error=0.03,commit_then_error=0.05"
SEED = 20_240_611
PUTS = 200
TRANSACTIONS = 100
PARALLEL = 32  # a throttled try sleeps up to 1 s before its retry; threads keep the test short
ORG = "fault-org"

Proxy = Callable[[str], FaultProxy]


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[Proxy]:
    started: list[FaultProxy] = []

    def start(spec: str) -> FaultProxy:
        started.append(FaultProxy(moto_endpoint, FaultRates.parse(spec), seed=SEED).start())
        return started[-1]

    yield start
    for each in started:
        each.stop()


def counters(proxy: FaultProxy) -> dict[str, Any]:
    with urllib.request.urlopen(proxy.url + COUNTERS_PATH, timeout=5) as response:
        return dict(json.load(response))


def runwire_dynamodb(endpoint: str) -> Any:
    return wiring.aws_client(wiring.load_settings({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1"}), "dynamodb")


def chunk_item(run_id: str, seq: int) -> dict[str, Any]:
    return {
        "pk": {"S": run_key(ORG, run_id)}, "sk": {"S": chunk_sort_key(seq)}, "seq": {"N": str(seq)},
        "body": {"S": json.dumps({"type": "text-delta", "delta": f"token {seq}"})},
        "writtenAt": {"N": "1700000000.5"}, "expiresAt": {"N": "4102444800"},
    }


def put_chunk_once(client: Any, table: str, item: dict[str, Any]) -> None:
    """A conditional put whose retry after it committed finds its own item: that counts as written
    (PutItem has no idempotency token; the condition failing on our own bytes is the proof)."""
    try:
        client.put_item(TableName=table, Item=item, ConditionExpression=ITEM_NOT_EXISTS,
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException" or exc.response.get("Item") != item:
            raise


def append_in_transaction(client: Any, table: str, run_id: str, seq: int) -> None:
    """A chunk and the run's write count in one transaction, as `finish` writes its end chunk."""
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": chunk_item(run_id, seq), "ConditionExpression": ITEM_NOT_EXISTS}},
        {"Update": {"TableName": table, "Key": {"pk": {"S": run_key(ORG, run_id)}, "sk": {"S": RUN_SORT_KEY}},
                    "UpdateExpression": "ADD writes :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])


def stored_partition(dynamodb_client: Any, table: str, run_id: str) -> list[dict[str, Any]]:
    pages = dynamodb_client.get_paginator("query").paginate(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": run_key(ORG, run_id)}},
        ConsistentRead=True)
    return [item for page in pages for item in page["Items"]]


def test_throttling_and_5xx_never_reach_the_caller_and_each_write_counts_once(
    proxy: Proxy, local_resources: Any, dynamodb_client: Any
) -> None:
    faulty = proxy(FAULTS)
    client = runwire_dynamodb(faulty.url)
    table = local_resources.table_name
    put_run, transaction_run = f"run_{uuid.uuid4().hex}", f"run_{uuid.uuid4().hex}"

    with ThreadPoolExecutor(PARALLEL) as pool:  # list(): the first exception a caller saw fails the test
        list(pool.map(lambda seq: put_chunk_once(client, table, chunk_item(put_run, seq)), range(1, PUTS + 1)))
        list(pool.map(lambda seq: append_in_transaction(client, table, transaction_run, seq),
                      range(1, TRANSACTIONS + 1)))

    # Read from moto itself: what is stored, not what the proxy says.
    assert stored_partition(dynamodb_client, table, put_run) == [chunk_item(put_run, seq) for seq in range(1, PUTS + 1)]
    stored = stored_partition(dynamodb_client, table, transaction_run)
    assert [item["sk"]["S"] for item in stored] == [chunk_sort_key(seq) for seq in range(1, TRANSACTIONS + 1)] + [
        RUN_SORT_KEY]
    assert stored[-1]["writes"] == {"N": str(TRANSACTIONS)}  # no transaction applied twice
    seen = counters(faulty)
    assert seen["requests"]["dynamodb"] > PUTS + TRANSACTIONS
    assert min(seen["faults"][kind] for kind in ("throttle", "error", "commit_then_error")) > 0, seen
    assert min(seen["throttle_codes"].values()) > 0, seen
    assert seen["transaction_replays"] > 0, seen  # a transaction retried after it committed, answered once


def test_without_retries_a_throttle_reaches_the_caller(proxy: Proxy) -> None:
    throttling = proxy("throttle=1")
    client = wiring._aws_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=throttling.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))

    with pytest.raises(ClientError) as raised:
        client.list_tables()

    assert raised.value.response["Error"]["Code"] in THROTTLE_CODES
    assert counters(throttling)["requests"]["dynamodb"] == 1


def test_runwire_client_gives_up_after_its_bounded_attempts(proxy: Proxy) -> None:
    failing = proxy("error=1")  # 5xx backs off 25 ms * 2^i: seven retries take well under 4 s

    with pytest.raises(ClientError) as raised:
        runwire_dynamodb(failing.url).list_tables()

    assert raised.value.response["Error"]["Code"] == "InternalFailure"
    assert counters(failing)["requests"]["dynamodb"] == wiring.TOTAL_ATTEMPTS["dynamodb"]


def test_concurrent_transactions_reach_moto_one_at_a_time(proxy: Proxy, local_resources: Any) -> None:
    """moto's TransactWriteItems deep-copies the table while other threads write it (a 500 when the
    copy races them); through the proxy even a client without retries never sees that."""
    clean = proxy("")
    client = wiring._aws_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=clean.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=PARALLEL))
    run_id = f"run_{uuid.uuid4().hex}"

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda seq: append_in_transaction(client, local_resources.table_name, run_id, seq), range(1, TRANSACTIONS + 1)))

    assert counters(clean)["requests"]["dynamodb"] == TRANSACTIONS
