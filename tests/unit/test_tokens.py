import time

import jwt
import pytest

from runwire.adapters.tokens import JWTVerifier, issue_token
from runwire.errors import AuthenticationError

SECRET = "unit-test-secret-0123456789abcdef"


def test_valid_token_names_subject_and_orgs():
    token = issue_token(SECRET, subject="u1", org="acme", lifetime_seconds=60, now=time.time(), orgs=["beta"])
    claims = JWTVerifier(SECRET).verify(token)
    assert claims.subject == "u1"
    assert claims.orgs == ("acme", "beta")
    assert claims.default_org == "acme"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"),
        jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, None, algorithm="none"),
        jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, "another-secret-0123456789abcdef-0123", algorithm="HS256"),
        jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) - 60}, SECRET, algorithm="HS256"),
        jwt.encode({"org": "o", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": "u", "org": "o"}, SECRET, algorithm="HS256"),
        "not-a-jwt",
    ],
    ids=["hs512", "alg-none", "wrong-secret", "expired", "no-sub", "no-exp", "garbage"],
)
def test_bad_tokens_are_refused(token):
    with pytest.raises(AuthenticationError):
        JWTVerifier(SECRET).verify(token)
