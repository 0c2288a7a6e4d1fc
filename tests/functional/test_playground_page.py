"""`/playground` in-process (the stream app over the in-memory fakes): the page and its two assets
are served with a strict Content-Security-Policy, name no other origin, and run no inline code."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from devstack.dev_token import DEV_TOKEN_PATH, create_dev_token_app
from runwire.adapters.tokens import JWTVerifier
from runwire.errors import AuthenticationError
from runwire.http.playground import CONTENT_SECURITY_POLICY, PLAYGROUND_FILES

from .in_memory_apps import in_memory_apps

DEV_SECRET = "dev-token-test-secret-0123456789abcdef"

ASSETS = ("/playground/playground.js", "/playground/playground.css")


@pytest.fixture(scope="module")
def stream():
    _, stream_app = in_memory_apps()
    with TestClient(stream_app) as client:
        yield client


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def test_playground_serves_the_page_and_its_assets_with_a_strict_csp(stream):
    for path, media in (("/playground", "text/html"), (ASSETS[0], "text/javascript"), (ASSETS[1], "text/css")):
        response = stream.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media), path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]


def test_the_page_loads_its_script_and_styles_from_this_origin_and_has_no_inline_code(stream):
    page = stream.get("/playground").text

    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.DOTALL)
    assert [(attributes.strip(), body) for attributes, body in scripts] == [
        ('type="module" src="/playground/playground.js"', "")]
    assert re.findall(r"<link\b[^>]*href=\"([^\"]+)\"", page) == ["/playground/playground.css"]
    assert not re.search(r"\son\w+\s*=", page), "an inline event handler"
    assert not re.search(r"\sstyle\s*=", page), "an inline style"


def test_no_playground_file_names_another_origin(stream):
    for served in PLAYGROUND_FILES:
        text = stream.get(served.path).text
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), served.path


def test_the_script_never_renders_text_as_html(stream):
    script = stream.get(ASSETS[0]).text

    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function", script)


def test_an_unknown_playground_path_is_404(stream):
    assert stream.get("/playground/index.html").status_code == 404
    assert stream.get("/playground/static/playground.js").status_code == 404


async def _raw_get(app, path: str) -> tuple[int, bytes]:
    """One GET through the ASGI interface with the path exactly as given: httpx (and so TestClient)
    would resolve `..` before sending; a server hands the app whatever the request line said."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("path", ["/playground/../wiring.py", "/playground/../../runwire/wiring.py",
                                  "/playground/..%2Fwiring.py", "/playground/./index.html"])
def test_a_dot_segment_under_playground_reaches_no_file(path):
    _, stream_app = in_memory_apps()

    status, body = asyncio.run(_raw_get(stream_app, path))

    assert status == 404, path
    assert json.loads(body)["error"]["code"] == "not_found"
    assert b"def " not in body and b"<html" not in body


# --- the local dev-token route (make dev's gateway only: devstack/dev_token.py) -----------------------
@pytest.fixture(scope="module")
def dev_tokens():
    with TestClient(create_dev_token_app(DEV_SECRET)) as client:
        yield client


def test_the_dev_token_route_answers_its_probe_and_mints_a_token_the_api_accepts(dev_tokens):
    assert dev_tokens.get(DEV_TOKEN_PATH).status_code == 204

    minted = dev_tokens.post(DEV_TOKEN_PATH, json={"org": "team-a"})

    assert minted.status_code == 200
    claims = JWTVerifier(DEV_SECRET).verify(minted.json()["token"])
    assert claims.orgs == ("team-a",) and claims.subject == "dev-user"
    assert minted.json()["org"] == "team-a" and minted.json()["expiresAt"] > time.time() + 11 * 3600
    default = dev_tokens.post(DEV_TOKEN_PATH, json={})
    assert JWTVerifier(DEV_SECRET).verify(default.json()["token"]).orgs == ("my-org",)


def test_the_dev_token_route_refuses_an_org_that_is_no_identifier(dev_tokens):
    for body in ({"org": "bad org"}, {"org": ""}, {"org": 7}):
        response = dev_tokens.post(DEV_TOKEN_PATH, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_request"


def test_a_dev_token_signed_with_another_secret_is_refused():
    minted = TestClient(create_dev_token_app("another-dev-token-secret-0123456789abcdef")).post(DEV_TOKEN_PATH, json={})

    with pytest.raises(AuthenticationError):
        JWTVerifier(DEV_SECRET).verify(minted.json()["token"])
