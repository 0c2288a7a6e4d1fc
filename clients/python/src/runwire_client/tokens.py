"""`runwire token`: a dev token for a local stack (`make dev`), signed as the stack checks it.

HS256 with `JWT_SECRET`, else the local stack's default secret (the same string as
devstack/token.py's `DEV_JWT_SECRET`; a test keeps the two equal). Deployed stacks take tokens
from the operator's identity provider: this is for a machine's own stack only.
"""

from __future__ import annotations

import os
import time

import jwt

LOCAL_DEV_SECRET = "runwire-local-dev-secret-change-me"


def local_secret() -> str:
    return os.environ.get("JWT_SECRET") or LOCAL_DEV_SECRET


def mint_dev_token(org: str, *, subject: str = "dev-user", hours: float = 12, secret: str | None = None) -> str:
    now = int(time.time())
    payload = {"sub": subject, "org": org, "iat": now, "exp": now + int(hours * 3600)}
    return jwt.encode(payload, secret or local_secret(), algorithm="HS256")
