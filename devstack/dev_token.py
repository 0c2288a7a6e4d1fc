"""`POST /playground/dev-token`: the playground's "Mint (local)" button, for `make dev` only.

Only devstack/gateway.py registers this app, in front of the two apps; the stream app that
runwire.wiring builds (and Lambda runs) has no such route, so a deployed `/playground/dev-token` is
the stream app's `404` (tests/unit/test_one_origin.py checks it). The page probes `GET` first and
shows the button only when it answers `204`.

A minted token is what `make token ORG=…` prints: signed with the local stack's JWT_SECRET
(devstack/token.py), subject `dev-user`, valid 12 hours. The gateway listens on 127.0.0.1 only.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import FastAPI, Response
from pydantic import Field, StrictStr

from runwire.adapters.tokens import issue_token
from runwire.core.models import IDENTIFIER_PATTERN, WireModel
from runwire.http.errors import install_error_handlers
from runwire.http.playground import PLAYGROUND_PATH

DEV_TOKEN_PATH = f"{PLAYGROUND_PATH}/dev-token"
DEV_ORG = "my-org"
DEV_SUBJECT = "dev-user"
DEV_TOKEN_HOURS = 12


class DevTokenRequest(WireModel):
    org: Annotated[StrictStr, Field(pattern=IDENTIFIER_PATTERN, description="The token's org claim")] = DEV_ORG


class DevToken(WireModel):
    token: str
    org: str
    expires_at: int


def create_dev_token_app(secret: str) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)

    @app.get(DEV_TOKEN_PATH, status_code=204, include_in_schema=False)
    async def dev_token_available() -> Response:
        return Response(status_code=204)

    @app.post(DEV_TOKEN_PATH, include_in_schema=False)
    async def mint_dev_token(request: DevTokenRequest) -> DevToken:
        now = time.time()
        lifetime = DEV_TOKEN_HOURS * 3600
        token = issue_token(secret, subject=DEV_SUBJECT, org=request.org, lifetime_seconds=lifetime, now=now)
        return DevToken(token=token, org=request.org, expires_at=int(now) + lifetime)

    return app
