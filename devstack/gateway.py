"""Both HTTP apps on one port, as `make dev` serves them.

In AWS the API app sits behind API Gateway and the stream app behind its Function URL; locally a
request goes to the stream app when one of the stream app's own routes matches it, so the two
route tables are never written down twice. `/docs` and `/openapi.json` are the API app's, and
describe both apps' routes, as under the deployed stack's one base URL.

Locally only, a third app answers first: the playground's dev-token route (devstack/dev_token.py),
which no deployed app has.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from devstack.dev_token import create_dev_token_app
from devstack.token import dev_secret
from runwire.http.playground import is_playground_route
from runwire.wiring import build_api_app, build_stream_app


class Gateway:
    def __init__(self, api: FastAPI, stream: FastAPI, local: FastAPI | None = None) -> None:
        self.api = api
        self.stream = stream
        self.local = local
        self._stream_routes = [r for r in stream.routes
                               if isinstance(r, APIRoute) and (r.include_in_schema or is_playground_route(r))]
        self._local_routes = [r for r in local.routes if isinstance(r, APIRoute)] if local is not None else []

    def _is_stream(self, scope: dict[str, Any]) -> bool:
        return _matches(self._stream_routes, scope)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.local is not None and _matches(self._local_routes, scope):
            target = self.local
        else:
            target = self.stream if self._is_stream(scope) else self.api
        await target(scope, receive, send)


def _matches(routes: list[APIRoute], scope: dict[str, Any]) -> bool:
    return scope["type"] == "http" and any(route.matches(scope)[0] is Match.FULL for route in routes)


def create_gateway() -> Gateway:
    """Both apps from the environment's settings (`uvicorn --factory devstack.gateway:create_gateway`),
    and the local dev-token route, signing with the secret the apps verify with (devstack/token.py)."""
    return Gateway(build_api_app(), build_stream_app(), create_dev_token_app(dev_secret()))
