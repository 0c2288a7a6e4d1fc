"""A moto server that records every request it serves, for counting AWS requests per run.

    python -m bench.counting --port 5055        prints `READY http://127.0.0.1:5055`

It is moto's own WSGI app (`DomainDispatcherApplication(create_backend_app)` on werkzeug's
threaded server, as `ThreadedMotoServer` builds it) wrapped in `RequestRecorder`, which notes for
each request: when it arrived and when its response was complete (this machine's `time.time()`,
the clock the scripted model stamps tokens with), the service and operation (DynamoDB's and SQS's
`X-Amz-Target`, or a query-protocol `Action`), which process sent it (botocore's
`app/<AWS_SDK_UA_APP_ID>` in the User-Agent; `python -m devstack` tags its worker and gateway),
the request body, and the response body of the calls whose answer the benchmark reads (Query,
ReceiveMessage). Recording is an append to a list: the bodies are parsed afterwards, by the
benchmark, so counting costs moto almost nothing.

It runs in its own process, as the embedded server of `make dev` runs in its own, so the
benchmark's clients never compete with it for a GIL. The log is read over HTTP:
`GET /_bench/requests?since=N` → `{"next": M, "records": [...]}`.

**Query by partition.** Stock moto answers every Query by sorting every item of the table and
filtering them by partition key (`Table.all_items()` in `Table.query`), so a Query costs
O(table · log table): 3 ms at 100 items, ~15 ms at 1,000, ~120 ms at 10,000 on this machine
(`bench.calibration` measures it). DynamoDB reads only the partition named. With
`--query-by partition` (the benchmark's default) this server hands moto's Query only the items of
that partition (`partition_queries`): the same items in the same order, so the same answer, at a
cost that does not grow with the table. `--query-by scan` keeps stock moto;
`POST /_bench/query-by?mode=scan|partition` switches at run time (the calibration compares both).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

LOG_PATH = "/_bench/requests"
QUERY_MODE_PATH = "/_bench/query-by"
_APP_ID = re.compile(r"\bapp/(\S+)")
_CREDENTIAL_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
# Whose response bodies the benchmark reads: a Query's items (which chunks a reader got, when),
# a ReceiveMessage's messages (which run a worker invocation took).
_KEEP_RESPONSE = {("dynamodb", "Query"), ("sqs", "ReceiveMessage")}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Request:
    """One request the counting server served."""

    started: float
    ended: float
    service: str
    operation: str
    app: str
    status: int
    request_bytes: int
    response_bytes: int
    body: str
    response: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        return cls(**data)


def classify(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    """(service, operation) of an AWS request, from its target header or its query-protocol body."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, operation = target.partition(".")
        if prefix.startswith("DynamoDBStreams"):
            return "dynamodbstreams", operation
        if prefix.startswith("DynamoDB"):
            return "dynamodb", operation
        if prefix == "AmazonSQS":
            return "sqs", operation
        return prefix.lower(), operation
    match = _CREDENTIAL_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else "unknown"
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return service, action[0]
    return service, environ.get("REQUEST_METHOD", "GET")


class RequestRecorder:
    """WSGI middleware: serve through `app`, record each request, serve the record at LOG_PATH."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/_bench/"):
            return self._serve_log(environ, start_response)
        started = time.time()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service, operation = classify(environ, body)
        status: list[int] = [0]

        def recording_start_response(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info) if exc_info else start_response(status_line, headers)

        chunks = self._app(environ, recording_start_response)
        try:
            response = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        app_id = _APP_ID.search(environ.get("HTTP_USER_AGENT", ""))
        record = {
            "started": started,
            "ended": time.time(),
            "service": service,
            "operation": operation,
            "app": app_id.group(1) if app_id else "",
            "status": status[0],
            "request_bytes": len(body),
            "response_bytes": len(response),
            "body": body,
            "response": response if (service, operation) in _KEEP_RESPONSE else b"",
        }
        with self._lock:
            self._records.append(record)
        return [response]

    def _serve_log(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("PATH_INFO") == QUERY_MODE_PATH:
            QueryMode.partition = query.get("mode", ["partition"])[0] == "partition"
            start_response("204 No Content", [])
            return [b""]
        since = int(query.get("since", ["0"])[0])
        with self._lock:
            records = self._records[since:]
            end = len(self._records)
        payload = json.dumps({
            "next": end,
            "records": [
                {**r, "body": r["body"].decode("utf-8", "replace"), "response": r["response"].decode("utf-8", "replace")}
                for r in records
            ],
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


class QueryMode:
    """Whether moto's Query reads one partition (like DynamoDB) or walks the table (stock moto)."""

    partition = True


_scope = threading.local()


def partition_queries() -> None:
    """Patch moto's `Table` so that, while `QueryMode.partition` is set, a table Query (not an index
    Query) sees only its partition's items where stock moto's `Table.query` asks `all_items()` for
    every item of the table. Nothing else changes: moto still filters, sorts and pages them."""
    import inspect

    from moto.dynamodb.models.table import Table

    stock_all_items, stock_query = Table.all_items, Table.query
    signature = inspect.signature(stock_query)

    def all_items(self: Any) -> list[Any]:
        partition = getattr(_scope, "partition", None)
        if partition is None or partition[0] is not self:
            return stock_all_items(self)
        hash_set = self.items.get(partition[1])
        if hash_set is None:
            return []
        # list(dict.values()) copies atomically under the GIL, while writers may be adding items.
        items = list(hash_set.values()) if self.range_key_attr else [hash_set]
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        if not QueryMode.partition or arguments.get("index_name") or arguments.get("hash_key") is None:
            return stock_query(self, *args, **kwargs)
        _scope.partition = (self, arguments["hash_key"])
        try:
            return stock_query(self, *args, **kwargs)
        finally:
            _scope.partition = None

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


def serve(host: str, port: int, query_by: str = "partition") -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    partition_queries()
    from devstack import moto_fidelity

    moto_fidelity.apply()  # transactions and deletes as DynamoDB and SQS do them
    QueryMode.partition = query_by == "partition"
    app = RequestRecorder(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"READY http://{host}:{server.server_port}", flush=True)
    server.serve_forever()


class RequestLog:
    """The benchmark's side: fetch the counting server's records incrementally."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._next = 0
        self.requests: list[Request] = []

    def fetch(self) -> list[Request]:
        """Every request recorded so far (fetching only the new ones)."""
        with urllib.request.urlopen(f"{self._endpoint}{LOG_PATH}?since={self._next}", timeout=60) as response:
            data = json.load(response)
        self._next = data["next"]
        self.requests.extend(Request.from_json(r) for r in data["records"])
        return self.requests

    def set_query_mode(self, mode: str) -> None:
        request = urllib.request.Request(f"{self._endpoint}{QUERY_MODE_PATH}?mode={mode}", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def between(self, start: float, end: float) -> Iterator[Request]:
        return (r for r in self.requests if start <= r.started < end)


def main() -> None:
    parser = argparse.ArgumentParser(description="A moto server that records every request (for `make bench`).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--query-by", choices=("partition", "scan"), default="partition",
                        help="partition: a Query reads its partition, as DynamoDB does (default); scan: stock moto")
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    serve(args.host, args.port, args.query_by)


if __name__ == "__main__":
    main()
