"""Who is calling: a JWT from `Authorization: Bearer`, or, on GET only, the `access_token` cookie
(a browser's EventSource cannot send headers; seed 000: "the JWT guard accepts cookie auth for SSE
GETs"). A cookie never authorizes a POST, so another site cannot start or cancel runs with it, nor
a GET that depends on `current_bearer_caller` (the webhook signing secret). An org from the `orgid` header or query parameter that the
token must name in its `org` claim or `orgs` list. Without an `orgid`, the token's own org."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from ..adapters.tokens import JWTVerifier
from ..core.models import IDENTIFIER_PATTERN, Caller
from ..errors import AuthenticationError, OrgForbiddenError, OrgRequiredError

COOKIE_NAME = "access_token"
COOKIE_METHODS = frozenset({"GET", "HEAD"})
ORG_HEADER = "orgid"
_ORG = re.compile(IDENTIFIER_PATTERN)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        return token.strip()
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie and request.method in COOKIE_METHODS:
        return cookie
    if cookie:
        raise AuthenticationError("the access_token cookie authenticates GET requests only: send 'Authorization: Bearer <token>'")
    raise AuthenticationError("authentication required: send 'Authorization: Bearer <token>' (or, on GET, an access_token cookie)")


def authenticate(request: Request, verifier: JWTVerifier) -> Caller:
    claims = verifier.verify(bearer_token(request))
    requested = request.headers.get(ORG_HEADER) or request.query_params.get(ORG_HEADER) or None
    if requested is None:
        if claims.default_org is None:
            raise OrgRequiredError("name the org with an 'orgid' header or query parameter")
        requested = claims.default_org
    if requested not in claims.orgs or not _ORG.fullmatch(requested):
        raise OrgForbiddenError(f"the token does not grant access to org {requested!r}")
    return Caller(user_id=claims.subject, org_id=requested)


# What a route that depends on `current_caller` declares in OpenAPI (security schemes, the `orgid`
# header and query parameter), FastAPI's own way, so routes added in any router declare it too.
# They check nothing (auto_error=False): `authenticate` reads the request itself, as above.
BEARER_SCHEME = HTTPBearer(scheme_name="bearerAuth", bearerFormat="JWT", auto_error=False,
                           description="A JWT (HS256) whose `org` or `orgs` grant the org")
COOKIE_SCHEME = APIKeyCookie(name=COOKIE_NAME, scheme_name="accessTokenCookie", auto_error=False,
                             description="The JWT as a cookie: GET and HEAD requests only (EventSource sends no headers)")
OrgHeader = Annotated[str | None, Header(alias=ORG_HEADER, description="The org to act in (the token must grant "
                                                                        "it); default: the token's own org")]
OrgQuery = Annotated[str | None, Query(alias=ORG_HEADER, description="The `orgid` header, for clients that cannot "
                                                                      "send headers (EventSource)")]


def current_caller(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)] = None,
    _cookie: Annotated[str | None, Security(COOKIE_SCHEME)] = None,
    _org_header: OrgHeader = None,
    _org_query: OrgQuery = None,
) -> Caller:
    """FastAPI dependency: the app keeps its verifier in `app.state.verifier`."""
    return authenticate(request, request.app.state.verifier)


CallerDep = Annotated[Caller, Depends(current_caller)]


def current_bearer_caller(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)] = None,
    _org_header: OrgHeader = None,
    _org_query: OrgQuery = None,
) -> Caller:
    """FastAPI dependency for a GET the cookie must not authorize (the webhook signing secret): a
    credential a browser attaches by itself should not fetch, nor create, a secret; only a client that
    holds the token and sends it as `Authorization: Bearer` may."""
    if not request.headers.get("authorization"):
        raise AuthenticationError("this route takes 'Authorization: Bearer <token>' only (not the access_token cookie)")
    return authenticate(request, request.app.state.verifier)


BearerCallerDep = Annotated[Caller, Depends(current_bearer_caller)]
