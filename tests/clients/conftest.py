"""The clients' tests: the SDK and the CLI against the local stack (the integration tests' stack,
started once for this folder), over real HTTP."""

from __future__ import annotations

import pytest

from devstack.readiness import stop
from tests.integration.conftest import Stack, start_stack


@pytest.fixture(scope="session")
def client_stack(tmp_path_factory: pytest.TempPathFactory):
    stack, process = start_stack(tmp_path_factory, "client-stack")
    yield stack
    stop(process)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sdk_config(stack: Stack, **overrides: object) -> dict[str, object]:
    """Keyword arguments for `Runwire(...)` / `AsyncRunwire(...)` on this stack."""
    return {"base_url": stack.base_url, "token": stack.token(), "org": "my-org", **overrides}
