"""JWT verification (PyJWT): HS256 only, `sub` and `exp` required.

Pinning `algorithms=["HS256"]` is what refuses `alg: none` and algorithm-confusion tokens
(an RS256 public key passed off as an HMAC secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from ..errors import AuthenticationError

ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    orgs: tuple[str, ...]
    """The token's `org` claim first, then its `orgs` list."""
    default_org: str | None


class JWTVerifier:
    def __init__(self, secret: str, *, leeway_seconds: float = 5.0) -> None:
        if not secret:
            raise ValueError("the JWT secret is empty")
        self._secret = secret
        self._leeway = leeway_seconds

    def verify(self, token: str) -> TokenClaims:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp"]},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"the token has no '{exc.claim}' claim") from None
        except jwt.InvalidTokenError:
            raise AuthenticationError("the token is not valid") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("the token's 'sub' claim must be a non-empty string")
        org = claims.get("org")
        orgs = claims.get("orgs") or []
        if not isinstance(orgs, list):
            orgs = []
        ordered = ([org] if isinstance(org, str) and org else []) + [o for o in orgs if isinstance(o, str) and o != org]
        default_org = org if isinstance(org, str) and org else (ordered[0] if len(ordered) == 1 else None)
        return TokenClaims(subject=subject, orgs=tuple(ordered), default_org=default_org)


def issue_token(secret: str, *, subject: str, org: str, lifetime_seconds: int, now: float, **extra: Any) -> str:
    """Mint a dev token (`make token`, tests). Production tokens come from the operator's identity provider."""
    payload = {"sub": subject, "org": org, "iat": int(now), "exp": int(now) + lifetime_seconds, **extra}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)
