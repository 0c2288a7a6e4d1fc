"""Both HTTP apps on one port, as `make dev` serves them.

In AWS the API app sits behind API Gateway and the stream app behind its Function URL; locally a
request goes to the stream app when one of the stream app's own routes matches it, so the two
route tables are never written down twice. `/docs` and `/openapi.json` are the API app's, and
describe both apps' routes, as under the deployed stack's one base URL.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from runwire.http.playground import is_playground_route
from runwire.wiring import build_api_app, build_stream_app


class Gateway:
    def __init__(self, api: FastAPI, stream: FastAPI) -> None:
        self.api = api
        self.stream = stream
        self._stream_routes = [r for r in stream.routes
                               if isinstance(r, APIRoute) and (r.include_in_schema or is_playground_route(r))]

    def _is_stream(self, scope: dict[str, Any]) -> bool:
        return scope["type"] == "http" and any(route.matches(scope)[0] is Match.FULL for route in self._stream_routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = self.stream if self._is_stream(scope) else self.api
        await target(scope, receive, send)


def create_gateway() -> Gateway:
    """Both apps from the environment's settings (`uvicorn --factory devstack.gateway:create_gateway`)."""
    return Gateway(build_api_app(), build_stream_app())
