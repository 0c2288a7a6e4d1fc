"""`/playground` in-process (the stream app over the in-memory fakes): the page and its two assets
are served with a strict Content-Security-Policy, name no other origin, and run no inline code."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from runwire.http.playground import CONTENT_SECURITY_POLICY, PLAYGROUND_FILES

from .in_memory_apps import in_memory_apps

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
    assert stream.get("/playground/../wiring.py").status_code == 404
    assert stream.get("/playground/index.html").status_code == 404
