"""The processes a benchmark phase talks to, each started fresh on free ports.

- the counting moto server (`python -m bench.counting`), a process of its own;
- the local stack against it (`python -m devstack --aws-endpoint ... --quiet`), started as
  `tests/integration/conftest.py` starts it, with `MODEL_PROVIDER=scripted`;
- the baseline server (`uvicorn --factory bench.baseline:app_from_environment`).

Every phase gets a fresh moto server and stack: moto never expires items (and stock moto's Query
walks the whole table, see `bench.calibration`), so a phase must not pay for the ones before it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.readiness import stop, wait_until_healthy
from runwire.adapters.tokens import issue_token

from .counting import RequestLog

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
ORG = "bench-org"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def auth_headers() -> dict[str, str]:
    token = issue_token(SECRET, subject="bench-user", org=ORG, lifetime_seconds=6 * 3600, now=time.time())
    return {"orgid": ORG, "Authorization": f"Bearer {token}"}


def base_environment(token_delay_ms: float) -> dict[str, str]:
    return {
        **os.environ,
        "JWT_SECRET": SECRET,
        "MODEL_PROVIDER": "scripted",
        "SCRIPTED_TOKEN_DELAY_MS": f"{token_delay_ms:g}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop(process, timeout=15)


def _wait_for_line(process: subprocess.Popen[bytes], log_path: Path, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith(marker):
                return line
        if process.poll() is not None:
            break
        time.sleep(0.1)
    _stop(process)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    raise RuntimeError(f"{process.args!r} did not print {marker!r}:\n{tail}")


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    if wait_until_healthy(url, process, timeout):
        return
    _stop(process)
    raise RuntimeError(f"{url} did not answer:\n{log_path.read_text(errors='replace')[-3000:]}")


@dataclass
class Pipeline:
    base_url: str
    aws_endpoint: str
    requests: RequestLog
    _client: Any = None

    def prune(self, run_ids: list[str]) -> int:
        """Delete finished runs' items, as if their TTL had passed: moto never expires items, and its
        Query walks the whole table, so a table that only grows would slow every later run.
        These requests are tagged `bench-pruning` and left out of every count. Returns items deleted."""
        import boto3
        from botocore.config import Config

        if self._client is None:
            self._client = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
            ).client("dynamodb", endpoint_url=self.aws_endpoint, config=Config(user_agent_appid="bench-pruning"))
            self._table = self._client.list_tables()["TableNames"][0]
        keys: list[dict[str, Any]] = []
        for run_id in run_ids:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table, KeyConditionExpression="pk = :pk", ProjectionExpression="pk, sk",
                ExpressionAttributeValues={":pk": {"S": f"RUN#{ORG}#{run_id}"}},
            )
            keys.extend(item for page in pages for item in page["Items"])
        for start in range(0, len(keys), 25):
            self._client.batch_write_item(
                RequestItems={self._table: [{"DeleteRequest": {"Key": key}} for key in keys[start:start + 25]]}
            )
        return len(keys)


@contextmanager
def counting_server(log_dir: Path, name: str, query_by: str = "partition") -> Iterator[str]:
    """A fresh counting moto server (`bench.counting`) in its own process; yields its endpoint."""
    log_path = log_dir / f"{name}-moto.log"
    process = subprocess.Popen([sys.executable, "-m", "bench.counting", "--port", str(free_port()),
                                "--query-by", query_by], cwd=ROOT,
                               env=base_environment(0), stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    try:
        yield _wait_for_line(process, log_path, "READY", 60).split()[1]
    finally:
        _stop(process)


@contextmanager
def pipeline_stack(log_dir: Path, name: str, token_delay_ms: float, query_by: str) -> Iterator[Pipeline]:
    """A fresh counting moto server and a fresh local stack using it."""
    with counting_server(log_dir, name, query_by) as endpoint:
        port = free_port()
        stack_log = log_dir / f"{name}-stack.log"
        stack = subprocess.Popen(
            [sys.executable, "-m", "devstack", "--port", str(port), "--aws-endpoint", endpoint, "--quiet"],
            cwd=ROOT, env=base_environment(token_delay_ms), stdout=stack_log.open("w"), stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_line(stack, stack_log, "READY", 90)
            yield Pipeline(f"http://127.0.0.1:{port}", endpoint, RequestLog(endpoint))
        finally:
            _stop(stack)


@contextmanager
def baseline_server(log_dir: Path, token_delay_ms: float) -> Iterator[str]:
    port = free_port()
    log_path = log_dir / "baseline.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.baseline:app_from_environment",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=base_environment(token_delay_ms), stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_healthy(f"{base}/healthz", process, log_path)
        yield base
    finally:
        _stop(process)
