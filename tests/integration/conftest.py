"""The local stack (`python -m devstack`, what `make dev` runs), started once per test session on
free ports, and talked to over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.readiness import stop
from runwire.adapters.tokens import issue_token

ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-test-secret-0123456789abcdef"
MAX_RUN_SECONDS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    base_url: str
    moto_endpoint: str
    log_path: Path

    def token(self, org: str = "my-org", sub: str = "dev-user", **claims) -> str:
        return issue_token(SECRET, subject=sub, org=org, lifetime_seconds=3600, now=time.time(), **claims)

    def headers(self, org: str = "my-org", **claims) -> dict[str, str]:
        return {"orgid": org, "Authorization": f"Bearer {self.token(org, **claims)}"}

    def start(self, client: httpx.Client, task: str, org: str = "my-org", **body) -> dict:
        response = client.post(f"{self.base_url}/v1/runs", json={"task": task, **body}, headers=self.headers(org))
        assert response.status_code == 202, response.text
        return response.json()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_stack(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> tuple[Stack, subprocess.Popen]:
    port, moto_port = free_port(), free_port()
    log_path = tmp_path_factory.mktemp(name) / "stack.log"
    environment = {
        **os.environ,
        "JWT_SECRET": SECRET,
        "MODEL_PROVIDER": "scripted",
        "MAX_RUN_SECONDS": str(MAX_RUN_SECONDS),
        "STREAM_RETENTION_SECONDS": "120",
        "SCRIPTED_TOKEN_DELAY_MS": "5",
        "CANCEL_CHECK_MS": "200",
        # Seed 002's examples address an agent by this id: an operator-defined agent, as in production.
        "EXTRA_AGENTS": json.dumps([
            {"agentId": "ag_c47e7c97_b2f2", "role": "support", "systemPrompt": "You are a support agent.",
             "tools": ["calculator"]},
            # An operator's agent whose calculator waits for a person's approval.
            {"agentId": "ag_careful", "role": "careful", "systemPrompt": "You ask before you calculate.",
             "tools": ["calculator"], "approvalRequired": ["calculator"]},
        ]),
        **env,
    }
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--port", str(port), "--moto-port", str(moto_port)],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    stack = Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", log_path)
    deadline = time.monotonic() + 90
    while "READY" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not start:\n{stack.log_tail()}")
        time.sleep(0.2)
    return stack, process


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    stack, process = start_stack(tmp_path_factory, "stack")
    yield stack
    stop(process)


@pytest.fixture
def client():
    with httpx.Client(timeout=30) as client:
        yield client
