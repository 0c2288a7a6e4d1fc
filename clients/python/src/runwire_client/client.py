"""`Runwire` and `AsyncRunwire`: one API each, over httpx.

    from runwire_client import Runwire
    client = Runwire()                      # RUNWIRE_BASE_URL, RUNWIRE_STREAM_URL, RUNWIRE_TOKEN, RUNWIRE_ORG
    run = client.runs.create(task="What is 17 * 23?")
    for chunk in client.runs.stream(run.run_id):
        if chunk.type == "text":
            print(chunk.text, end="")
"""

from __future__ import annotations

from typing import Any

import httpx

from .config import ClientConfig
from .resources import AsyncConversations, AsyncRuns, Conversations, Runs
from .streaming import StreamOptions
from .transport import RetryPolicy, json_of, send, send_async

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""Long enough for `POST /v1/runs/wait` (25 s at most) and a long-poll (20 s at most)."""


class Runwire:
    def __init__(
        self,
        *,
        base_url: str | None = None,
        stream_url: str | None = None,
        token: str | None = None,
        org: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        stream_options: StreamOptions | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(base_url, stream_url, token, org)
        self.retry = retry or RetryPolicy()
        self.stream_options = stream_options or StreamOptions()
        self.http = http_client or httpx.Client(timeout=timeout)
        self.runs = Runs(self)
        self.conversations = Conversations(self)

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One JSON route under the base URL: its body, or its error raised (`APIError` and subclasses)."""
        request = self.http.build_request(
            method, f"{self.config.base_url}{path}", json=json, params=params, headers=self.config.headers()
        )
        return json_of(send(self.http, self.retry, request))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Runwire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRunwire:
    def __init__(
        self,
        *,
        base_url: str | None = None,
        stream_url: str | None = None,
        token: str | None = None,
        org: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        stream_options: StreamOptions | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(base_url, stream_url, token, org)
        self.retry = retry or RetryPolicy()
        self.stream_options = stream_options or StreamOptions()
        self.http = http_client or httpx.AsyncClient(timeout=timeout)
        self.runs = AsyncRuns(self)
        self.conversations = AsyncConversations(self)

    async def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        request = self.http.build_request(
            method, f"{self.config.base_url}{path}", json=json, params=params, headers=self.config.headers()
        )
        response = await send_async(self.http, self.retry, request)
        return json_of(response)

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncRunwire:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
