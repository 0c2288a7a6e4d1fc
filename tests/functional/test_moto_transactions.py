"""The local DynamoDB's transactions (devstack.moto_dynamodb): all or nothing, and isolated from the
writes around them, as on DynamoDB. Stock moto 5.2 rolls a refused transaction back by restoring a
copy of the whole table, erasing what other requests wrote meanwhile; every chunk a worker writes
is a transaction, so the local stack would lose chunks of other runs."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from devstack import moto_dynamodb


@pytest.fixture(scope="module")
def dynamodb():
    moto_dynamodb.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=f"http://{host}:{port}")
    client.create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    yield client
    server.stop()


def item(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def test_refused_transactions_erase_nothing_written_around_them(dynamodb):
    run = "RUN#" + uuid.uuid4().hex
    dynamodb.put_item(TableName="t", Item={**item(run, "RUN"), "owner": {"S": "w2"}})
    written: list[str] = []

    def writer() -> None:  # another run's worker, writing its chunks
        for n in range(300):
            sk = f"CHUNK#{n:010d}"
            dynamodb.put_item(TableName="t", Item=item("RUN#other-" + run, sk))
            written.append(sk)

    def stale_worker() -> None:  # fenced chunk writes of a worker that lost its lease: all refused
        for n in range(150):
            with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
                dynamodb.transact_write_items(TransactItems=[
                    {"ConditionCheck": {"TableName": "t", "Key": item(run, "RUN"), "ConditionExpression": "#o = :me",
                                        "ExpressionAttributeNames": {"#o": "owner"},
                                        "ExpressionAttributeValues": {":me": {"S": "w1"}}}},
                    {"Put": {"TableName": "t", "Item": item(run, f"CHUNK#{n:010d}"),
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                ])

    threads = [threading.Thread(target=writer), threading.Thread(target=stale_worker)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stored = dynamodb.query(TableName="t", KeyConditionExpression="pk = :pk",
                            ExpressionAttributeValues={":pk": {"S": "RUN#other-" + run}})["Items"]
    assert len(written) == 300
    assert sorted(i["sk"]["S"] for i in stored) == sorted(written), "a refused transaction erased other writes"
    assert dynamodb.query(TableName="t", KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
                          ExpressionAttributeValues={":pk": {"S": run}, ":c": {"S": "CHUNK#"}})["Count"] == 0


def test_a_transaction_whose_later_item_is_refused_writes_none_and_names_the_refused_item(dynamodb):
    run = "RUN#" + uuid.uuid4().hex
    dynamodb.put_item(TableName="t", Item=item(run, "CHUNK#0000000002"))
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as refused:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": item(run, f"CHUNK#{n:010d}"), "ConditionExpression": "attribute_not_exists(pk)"}}
            for n in (1, 2)
        ])
    reasons = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert dynamodb.query(TableName="t", KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues={":pk": {"S": run}})["Count"] == 1
