"""/docs, its Swagger UI files and /openapi.json through the StartRunFunction's real handler (Mangum,
an API Gateway HTTP API event), as deployed: the document lists the stream app's routes too, built
by `runwire.wiring` from the same settings."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
from pathlib import Path

import pytest

from devstack.worker_loop import LocalLambdaContext

EVENTS = Path(__file__).resolve().parents[2] / "events"
SECRET = "functional-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def start_run(local_resources, moto_endpoint):
    saved = dict(os.environ)
    os.environ.update({
        "AWS_ENDPOINT_URL": moto_endpoint,
        "RUNS_TABLE_NAME": local_resources.table_name,
        "RUN_QUEUE_URL": local_resources.queue_url,
        "JWT_SECRET": SECRET,
        "MODEL_PROVIDER": "scripted",
    })
    yield importlib.reload(importlib.import_module("functions.start_run.app"))
    os.environ.clear()
    os.environ.update(saved)


def get(start_run, path: str) -> tuple[int, dict, bytes]:
    event = copy.deepcopy(json.loads((EVENTS / "start_run.json").read_text()))
    event.update({"rawPath": path, "body": None})
    event["headers"] = {key: value for key, value in event["headers"].items()
                        if key not in ("authorization", "content-type", "content-length")}
    event["requestContext"]["http"].update({"method": "GET", "path": path})
    response = start_run.handler(event, LocalLambdaContext())
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return response["statusCode"], {k.lower(): v for k, v in response.get("headers", {}).items()}, raw


def test_the_api_function_serves_the_document_of_both_apps(start_run):
    status, headers, body = get(start_run, "/openapi.json")

    assert status == 200 and headers["content-type"].startswith("application/json")
    paths = json.loads(body)["paths"]
    assert "/v1/runs" in paths and "/v1/runs/{run_id}/stream" in paths and "/api/agent/chat/stream" in paths


def test_the_api_function_serves_the_docs_page_and_its_swagger_ui_files(start_run):
    status, headers, page = get(start_run, "/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"/docs/assets/swagger-ui-bundle.js" in page

    for asset, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                        ("favicon-32x32.png", "image/png")):
        status, headers, body = get(start_run, f"/docs/assets/{asset}")
        shipped = (Path(start_run.__file__).resolve().parents[2] / "layers/common/runwire/http/static/swagger-ui"
                   / asset).read_bytes()
        assert status == 200 and headers["content-type"].startswith(kind), (asset, status, headers)
        assert body == shipped, asset
