"""Where the client finds the API and who it is: arguments first, then the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
"""`make dev`'s address. Deployed, every route sits under the stack's one `BaseUrl`."""


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    """The JSON routes (`/v1/runs`, …): `RUNWIRE_BASE_URL`."""
    stream_url: str
    """The stream routes (`/v1/runs/{id}/stream`): `RUNWIRE_STREAM_URL`, else the base URL."""
    token: str | None
    """A JWT sent as `Authorization: Bearer`: `RUNWIRE_TOKEN`."""
    org: str | None
    """Sent as the `orgid` header when set (`RUNWIRE_ORG`); else the server uses the token's org."""

    @classmethod
    def resolve(
        cls,
        base_url: str | None = None,
        stream_url: str | None = None,
        token: str | None = None,
        org: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        env = os.environ if environ is None else environ
        base = (base_url or env.get("RUNWIRE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        stream = (stream_url or env.get("RUNWIRE_STREAM_URL") or base).rstrip("/")
        return cls(
            base_url=base,
            stream_url=stream,
            token=token or env.get("RUNWIRE_TOKEN") or None,
            org=org or env.get("RUNWIRE_ORG") or None,
        )

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "runwire-client-python/0.1.0"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.org:
            headers["orgid"] = self.org
        return headers
