"""How fast the moto server itself answers, as its table grows: the floor under every local figure.

Stock moto answers a Query by sorting every item of the table and filtering them by partition key
(`moto/dynamodb/models/table.py`: `Table.query` over `self.all_items()`), so a Query's cost grows
with the table, not with the partition; DynamoDB's does not (a Query reads one partition, by key).
And moto never expires items (TTL), so a table only grows.

On a fresh counting server, a table made from `template.yaml` is filled with runs of 25 items
(a run record and 24 chunks, about what a 100-token run writes) up to each size, and at each size
the pipeline's reader Query and chunk PutItem are timed, server-side (the counting log) and
client-side (boto3 → moto → boto3): the Query both as stock moto answers it (`scan`) and as the
benchmark's server does by default (`partition`), checking that both return the same items.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3

from .counting import RequestLog
from .distributions import summarize
from .stack import ROOT, counting_server

CHUNKS_PER_RUN = 24


def _chunk_item(run: int, seq: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"RUN#bench-org#run_{run:08d}"},
        "sk": {"S": f"CHUNK#{seq:010d}"},
        "seq": {"N": str(seq)},
        "body": {"S": json.dumps({"type": "text", "text": " ".join(f"{n}@1732000000000" for n in range(5))})},
        "writtenAt": {"N": repr(time.time())},
        "expiresAt": {"N": str(int(time.time()) + 3600)},
    }


def _fill(client: Any, table: str, first_run: int, last_run: int) -> None:
    items = []
    for run in range(first_run, last_run):
        items.append({"pk": {"S": f"RUN#bench-org#run_{run:08d}"}, "sk": {"S": "RUN"}, "status": {"S": "succeeded"},
                      "expiresAt": {"N": str(int(time.time()) + 3600)}})
        items.extend(_chunk_item(run, seq) for seq in range(1, CHUNKS_PER_RUN + 1))
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]})


def measure(log_dir: Path, table_sizes: list[int], samples: int, progress: Any = print) -> dict[str, Any]:
    from devstack.resources import create_local_resources, load_template

    with counting_server(log_dir, "calibration", "scan") as endpoint:
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name="us-east-1")
        table = create_local_resources(load_template(ROOT / "template.yaml"), session, endpoint).table_name
        client = session.client("dynamodb", endpoint_url=endpoint)
        log = RequestLog(endpoint)
        results: list[dict[str, Any]] = []
        runs = 0
        for size in table_sizes:
            target_runs = max(1, size // (CHUNKS_PER_RUN + 1))
            _fill(client, table, runs, target_runs)
            runs = target_runs
            probe = f"RUN#bench-org#run_{runs - 1:08d}"
            row: dict[str, Any] = {"items": runs * (CHUNKS_PER_RUN + 1)}
            answers = {}
            for mode in ("scan", "partition"):
                log.set_query_mode(mode)
                window_start = time.time()
                client_ms = []
                for _ in range(samples):
                    before = time.perf_counter()
                    answers[mode] = client.query(
                        TableName=table,
                        KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
                        ExpressionAttributeValues={":pk": {"S": probe}, ":first": {"S": f"CHUNK#{CHUNKS_PER_RUN - 4:010d}"},
                                                   ":last": {"S": "CHUNK#9999999999"}},
                        Limit=1000,
                    )["Items"]
                    client_ms.append((time.perf_counter() - before) * 1000)
                log.fetch()
                row[f"query_{mode}_server_ms"] = summarize(
                    r.seconds * 1000 for r in log.between(window_start, time.time()) if r.operation == "Query")
                row[f"query_{mode}_client_ms"] = summarize(client_ms)
            row["same_answer"] = answers["scan"] == answers["partition"] and len(answers["scan"]) == 5
            window_start = time.time()
            put_client_ms = []
            for i in range(samples):
                item = _chunk_item(runs - 1, 1000 + i)
                before = time.perf_counter()
                client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
                put_client_ms.append((time.perf_counter() - before) * 1000)
            log.fetch()
            row["put_server_ms"] = summarize(
                r.seconds * 1000 for r in log.between(window_start, time.time()) if r.operation == "PutItem")
            row["put_client_ms"] = summarize(put_client_ms)
            results.append(row)
            progress(f"  moto at {row['items']:>6} items: Query p50 {row['query_scan_server_ms']['p50']} ms "
                     f"(stock, table walk) vs {row['query_partition_server_ms']['p50']} ms (by partition), "
                     f"same answer: {row['same_answer']}; PutItem p50 {row['put_server_ms']['p50']} ms")
            # The probe's extra chunks (seq 1000+) would change the next size's answers: remove them.
            for i in range(samples):
                client.delete_item(TableName=table, Key={"pk": {"S": probe}, "sk": {"S": f"CHUNK#{1000 + i:010d}"}})
        return {"chunks_per_run": CHUNKS_PER_RUN, "samples": samples, "by_table_size": results}
