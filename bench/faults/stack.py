"""A local stack for the fault suite, and the handles a fault needs: its worker process, its table.

Each stack is `python -m devstack --aws-endpoint <moto> --quiet` (what `make dev` runs) against a
moto server of its own (`bench.faults.moto_server`), or, with `embedded_moto`, devstack's own moto
(`--moto-port`). The worker the suite kills is found by scanning /proc for the devstack process's
child whose command line runs `devstack.worker_loop`: devstack replaces a worker that dies, as
Lambda always has workers for its queue, so no hook in devstack is needed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import ROOT, base_environment, free_port
from devstack.readiness import stop

FAULTS_LINE = re.compile(r"^\s*FAULTS\s+(\S+)", re.MULTILINE)
START_TIMEOUT_SECONDS = 90.0


def _wait_for(process: subprocess.Popen[bytes], log_path: Path, marker: str, timeout: float) -> str:
    """The first line of the log that starts with `marker`; raise with the log's tail if none comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.strip().startswith(marker):
                return line.strip()
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop(process, timeout=10)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    raise RuntimeError(f"{' '.join(map(str, process.args))} did not print {marker!r}:\n{tail}")


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class FaultStack:
    name: str
    base_url: str
    moto_endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path
    faults_url: str | None = None
    """The fault proxy's URL from the banner's `FAULTS <url>` line, when DYNAMODB_FAULTS is set."""
    _store: Any = field(default=None, repr=False)

    def worker_pid(self) -> int | None:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _parent_pid(int(entry)) == self.process.pid \
                    and "devstack.worker_loop" in _command_line(int(entry)):
                return int(entry)
        return None

    def kill_worker(self, wait_for_worker: float = 10.0) -> tuple[int, float] | None:
        """SIGKILL the worker process; (its pid, the epoch time of the kill), or None if none runs."""
        deadline = time.monotonic() + wait_for_worker
        while (pid := self.worker_pid()) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        return pid, killed_at

    def store(self) -> Any:
        """The runs table read straight from moto (past any fault proxy), with chunks' write times."""
        if self._store is None:
            import boto3

            from runwire.adapters.dynamodb import DynamoDBRunStore

            client = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
            ).client("dynamodb", endpoint_url=self.moto_endpoint)
            names = client.list_tables()["TableNames"]
            table = next((name for name in names if name.endswith("-runs")), names[0])
            self._store = DynamoDBRunStore(client, table, time.time)
        return self._store

    def fault_counters(self) -> dict[str, Any] | None:
        if not self.faults_url:
            return None
        try:
            with urllib.request.urlopen(f"{self.faults_url.rstrip('/')}/__faults", timeout=5) as response:
                return dict(json.load(response))
        except (OSError, ValueError) as exc:
            return {"unreadable": str(exc)}

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def _moto_server(log_dir: Path, name: str) -> Iterator[str]:
    log_path = log_dir / f"{name}-moto.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.faults.moto_server", "--port", str(free_port())],
        cwd=ROOT, env=base_environment(0), stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        yield _wait_for(process, log_path, "READY", START_TIMEOUT_SECONDS).split()[1]
    finally:
        stop(process, timeout=10)


@contextmanager
def running_stack(
    log_dir: Path, name: str, env: dict[str, str], *, token_delay_ms: float = 20, embedded_moto: bool = False
) -> Iterator[FaultStack]:
    """A fresh local stack with `env` on top of the benchmark's environment (scripted model, bench secret)."""
    with ExitStack() as cleanup:
        port = free_port()
        if embedded_moto:
            moto_port = free_port()
            endpoint_args = ["--moto-port", str(moto_port)]
            moto_endpoint = f"http://127.0.0.1:{moto_port}"
        else:
            moto_endpoint = cleanup.enter_context(_moto_server(log_dir, name))
            endpoint_args = ["--aws-endpoint", moto_endpoint]
        log_path = log_dir / f"{name}-stack.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "--port", str(port), *endpoint_args, "--quiet"],
            cwd=ROOT, env={**base_environment(token_delay_ms), **env},
            stdout=log_path.open("w"), stderr=subprocess.STDOUT,
        )
        cleanup.callback(stop, process, 15)
        _wait_for(process, log_path, "READY", START_TIMEOUT_SECONDS)
        proxy = FAULTS_LINE.search(log_path.read_text(errors="replace"))
        yield FaultStack(name, f"http://127.0.0.1:{port}", moto_endpoint, process, log_path,
                         proxy.group(1) if proxy else None)
