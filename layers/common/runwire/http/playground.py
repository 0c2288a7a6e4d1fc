"""The playground (issue 11): a page to try runwire in a browser, served by the stream app at
`/playground` (locally `http://127.0.0.1:8000/playground`; deployed, the one base URL's
`/playground`, a CloudFront behaviour of its own).

Three static files from the package (`static/playground`: HTML, one JS module, CSS), no build step
and no CDN. The page talks to this origin only, with the token the user pastes. Every response
carries a strict Content-Security-Policy: scripts and styles from this origin only (no inline
script, no `eval`), requests to this origin only, and the page may not be framed. The routes are
not API operations, so they stay out of the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Response
from starlette.routing import BaseRoute, Route

PLAYGROUND_PATH = "/playground"
STATIC = Path(__file__).resolve().parent / "static" / "playground"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class PlaygroundFile:
    path: str
    file_name: str
    media_type: str


PLAYGROUND_FILES = (
    PlaygroundFile(PLAYGROUND_PATH, "index.html", "text/html; charset=utf-8"),
    PlaygroundFile(f"{PLAYGROUND_PATH}/playground.js", "playground.js", "text/javascript; charset=utf-8"),
    PlaygroundFile(f"{PLAYGROUND_PATH}/playground.css", "playground.css", "text/css; charset=utf-8"),
)


def is_playground_route(route: BaseRoute) -> bool:
    """A route of the page (public, like the stream routes, but not an API operation)."""
    return isinstance(route, Route) and (route.path == PLAYGROUND_PATH or route.path.startswith(f"{PLAYGROUND_PATH}/"))


def add_playground_routes(app: FastAPI) -> None:
    """GET `/playground` and its two assets, read once from the package."""
    for served in PLAYGROUND_FILES:
        app.add_api_route(served.path, _file_endpoint(served), methods=["GET"], include_in_schema=False)


def _file_endpoint(served: PlaygroundFile) -> Callable[[], Awaitable[Response]]:
    content = (STATIC / served.file_name).read_bytes()

    async def playground_file() -> Response:
        return Response(content, media_type=served.media_type, headers=SECURITY_HEADERS)

    playground_file.__name__ = f"playground_{served.file_name.replace('.', '_')}"
    return playground_file
