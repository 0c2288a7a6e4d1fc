"""The OpenAPI document and /docs of the running local stack, read by the tools a user would point at
them (issue 12, point 1): an OpenAPI validator, schemathesis over every JSON route with a valid
token, and Chromium opening /docs with every other origin refused."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .test_js_clients import _missing_chromium, missing_js_tooling, node_json, require

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
"""What a client generator relies on: no 5xx, only declared statuses, content types and bodies.
Not `positive_data_acceptance`: a body the schema allows may still be refused by what a schema
cannot say (an `agentRole` that names no agent, `temperature` with `topP`), with a declared 400."""

EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))


def is_event_stream(operation: dict) -> bool:
    return "text/event-stream" in operation.get("responses", {}).get("200", {}).get("content", {})


@pytest.fixture(scope="module")
def live_document(stack) -> dict:
    response = httpx.get(f"{stack.base_url}/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def live_schema(stack, live_document):
    """Every JSON route of the document, read from the stack (the stream routes answer a stream)."""
    return schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json").exclude(
        func=lambda ctx: is_event_stream(ctx.operation.definition.raw)
    )


def test_the_served_document_is_valid_and_describes_both_apps(live_document):
    validate(live_document)
    paths = live_document["paths"]
    assert "post" in paths["/v1/runs"] and "get" in paths["/v1/runs/{run_id}/stream"]
    assert "post" in paths["/api/agent/chat/stream"] and "post" in paths["/chat/run"]


def test_the_stack_refuses_a_misspelt_field_on_v1_and_the_surface_ignores_it(stack, client):
    typo = client.post(f"{stack.base_url}/v1/runs", json={"task": "Hi", "agentrole": "support"}, headers=stack.headers())
    surface = client.post(f"{stack.base_url}/ai/agent/stream", json={"task": "Hi", "agentrole": "support"},
                          headers=stack.headers())

    assert typo.status_code == 400, typo.text
    assert typo.json()["error"]["message"].startswith("agentrole: unknown field")
    assert surface.status_code == 202, surface.text


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, checks: list, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=checks, timeout=40)

    call()


def test_json_routes_answer_no_5xx_and_only_what_the_document_declares(stack, live_schema):
    """Schemathesis over every JSON route, with a valid token: data the document allows, and data it
    does not, which must be refused with a declared 4xx (an unknown field in a /v1 body included)."""
    failures: list[str] = []
    fuzzed = 0
    for result in live_schema.get_all_operations():
        operation = result.ok()
        for mode, checks in ((GenerationMode.POSITIVE, CHECKS), (GenerationMode.NEGATIVE, [*CHECKS, negative_data_rejection])):
            try:
                fuzz(operation, mode, checks, stack.headers())
            except Exception as failure:  # each operation's first failure, all reported at once
                failures.append(f"{operation.label} ({mode.value}): {failure}")
        fuzzed += 1
    assert not failures, "\n\n".join(failures)
    assert fuzzed >= 10


def test_docs_page_renders_offline_in_chromium_lists_the_operations_and_tries_one_with_a_token(stack, live_document):
    require(missing_js_tooling() or _missing_chromium())

    run = stack.start(httpx.Client(timeout=30), "Hello")
    page = node_json(stack, "docs_page.mjs", RUN_ID=run["runId"])

    assert page["offOrigin"] == [], "the page asked for another origin (a CDN?)"
    assert page["pageErrors"] == [] and page["failedResponses"] == [], page
    assert page["authorize"], "no Authorize button: the document declares no security scheme"
    declared = {f"{method.upper()} {path}" for path, item in live_document["paths"].items() for method in item}
    shown = set(page["operations"])
    assert shown == declared, json.dumps({"missing": sorted(declared - shown), "extra": sorted(shown - declared)})
    # "Authorize" with the token, then "Try it out": the page's own request gets the run, not a 401.
    assert page["tryItOut"]["status"] == "200", page["tryItOut"]
    assert json.loads(page["tryItOut"]["body"])["runId"] == run["runId"]


def generated_client(document: dict, where: Path, name: str = "generated_openapi_client"):
    """A Python client generated by openapi-python-client from `document`, imported (under a name of
    its own: `runwire_client` is the SDK's, installed in the same venv)."""
    (where / "openapi.json").write_text(json.dumps(document))
    tools = Path(sys.executable).parent  # the generator, and the ruff it formats its output with
    result = subprocess.run(
        [str(tools / "openapi-python-client"), "generate", "--path", str(where / "openapi.json"), "--meta", "none",
         "--output-path", str(where / name)],
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(where))


def test_a_client_generated_from_the_document_starts_reads_and_misses_a_run(stack, live_document, tmp_path):
    package = generated_client(live_document, tmp_path)
    start_run = importlib.import_module(f"{package.__name__}.api.runs.start_run")
    get_run = importlib.import_module(f"{package.__name__}.api.runs.get_run")
    models = importlib.import_module(f"{package.__name__}.models")
    client = package.AuthenticatedClient(base_url=stack.base_url, token=stack.token(), raise_on_unexpected_status=True)

    started = start_run.sync(client=client, body=models.RunRequest(task="Hello"), orgid_header="my-org")
    assert isinstance(started, models.StartRunResponse), started
    run = get_run.sync(run_id=started.run_id, client=client)
    assert isinstance(run, models.RunView) and run.run_id == started.run_id
    missing = get_run.sync(run_id="run_nobody", client=client)
    assert isinstance(missing, models.ErrorResponse) and missing.error.code == "run_not_found"
    # The body is closed in the document, so the generated model has no room for a misspelt field.
    assert models.RunRequest.from_dict({"task": "Hi", "agentrole": "x"}).to_dict() == {"task": "Hi"}
    assert not hasattr(models.RunRequest(task="Hi"), "additional_properties")
