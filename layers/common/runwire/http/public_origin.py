"""The origin a client called, for the absolute URLs the API answers with (`streamUrl`, `pollUrl`, `eventsUrl`).

Deployed, clients call one CloudFront origin, and CloudFront calls API Gateway with API Gateway's own
`Host` (the managed origin request policy AllViewerExceptHostHeader: both API Gateway and function
URLs route by it), so the request's own host is not the one the client should use next. The
distribution's viewer-request function (template.yaml, `PublicOriginFunction`) writes the origin the
client called into `PUBLIC_ORIGIN_HEADER`, overwriting whatever the client sent. Without the header
(`make dev`, tests, a client calling API Gateway directly) the request's own origin is used.

A client calling API Gateway directly may set the header itself: it changes only the URLs in the
answers to that client, which it could rewrite anyway, and nothing is cached.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

PUBLIC_ORIGIN_HEADER = "x-runwire-public-origin"


def public_origin(request: Request) -> str:
    """`scheme://host[:port]` as the client called it, without a trailing slash."""
    forwarded = request.headers.get(PUBLIC_ORIGIN_HEADER, "")
    if _is_origin(forwarded):
        return forwarded.rstrip("/")
    return str(request.base_url).rstrip("/")


def _is_origin(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.netloc) and parts.path in ("", "/") \
        and not parts.query and not parts.fragment and "@" not in parts.netloc
