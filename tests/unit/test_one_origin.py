"""One HTTPS origin for every route (issue 12, point 7): CloudFront sends the stream routes to the
stream function's URL and every other path to the HTTP API.

The routing is checked against the two apps' real route tables, so a stream route added to
runwire.http.stream or runwire.http.surfaces without its CloudFront behaviour fails here, and so does
a behaviour that would take a JSON route away from the API.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from devstack.dev_token import DEV_TOKEN_PATH, create_dev_token_app
from devstack.gateway import Gateway
from devstack.resources import load_template
from runwire.core.tailing import PollPolicy
from runwire.http.playground import is_playground_route
from runwire.http.public_origin import PUBLIC_ORIGIN_HEADER
from runwire.wiring import build_api_app, build_stream_app, load_settings

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
SAMPLE_ID = "run_0123456789abcdef0123456789abcdef"
# CloudFront's managed policies (developer guide, "Use managed cache policies" and "Use managed
# origin request policies"): CachingDisabled, and AllViewerExceptHostHeader, the one meant for API
# Gateway and function URL origins, which route by their own Host.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
# Within every range CloudFront has documented for a custom origin's response timeout (1-60 s in the API
# reference of its time; up to 180 s without a quota increase now, per AWS re:Post).
MAX_ORIGIN_READ_TIMEOUT = 60


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def distribution(template: dict) -> dict:
    return template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]


@pytest.fixture(scope="module")
def apps() -> tuple[FastAPI, FastAPI]:
    # Building the apps creates clients but calls nothing: no server is needed to read their routes.
    settings = load_settings({
        "JWT_SECRET": "route-table-secret-0123456789abcdef",
        "RUN_QUEUE_URL": "http://127.0.0.1:9/queue",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    })
    return build_api_app(settings), build_stream_app(settings)


def _sample_path(template_path: str) -> str:
    return re.sub(r"\{[^}]+\}", SAMPLE_ID, template_path)


def _stream_routes(stream: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every public stream route, the playground's pages included (the app's own
    /healthz is not public)."""
    return [(method, route.path) for route in stream.routes
            if isinstance(route, APIRoute) and (route.include_in_schema or is_playground_route(route))
            for method in sorted(route.methods)]


def _api_routes(api: FastAPI) -> list[tuple[str, str]]:
    return [(method, route.path) for route in api.routes
            if isinstance(route, Route) for method in sorted(route.methods or ())]


def _behaviour_for(distribution: dict, path: str) -> dict:
    """The behaviour CloudFront applies: the first cache behaviour whose pattern matches the path
    (case-sensitive; `*` is any characters, `/` included), else the default one."""
    for behaviour in distribution.get("CacheBehaviors", []):
        if fnmatchcase(path, behaviour["PathPattern"]):
            return behaviour
    return distribution["DefaultCacheBehavior"]


def test_every_stream_route_goes_to_the_stream_function(distribution: dict, apps: tuple[FastAPI, FastAPI]) -> None:
    _, stream = apps
    routes = _stream_routes(stream)
    assert ("POST", "/v1/runs/stream") in routes and ("GET", "/v1/runs/{run_id}/stream") in routes
    assert ("GET", "/playground") in routes and ("GET", "/playground/playground.js") in routes
    for method, path in routes:
        behaviour = _behaviour_for(distribution, _sample_path(path))
        assert behaviour["TargetOriginId"] == "Streams", (method, path)
        assert method in behaviour["AllowedMethods"], (method, path)


def test_every_api_route_goes_to_the_api(distribution: dict, apps: tuple[FastAPI, FastAPI]) -> None:
    api, _ = apps
    routes = _api_routes(api)
    assert ("GET", "/docs") in routes and ("POST", "/ai/agent/stream") in routes
    for method, path in routes:
        behaviour = _behaviour_for(distribution, _sample_path(path))
        assert behaviour["TargetOriginId"] == "Api", (method, path)
        assert method in behaviour["AllowedMethods"], (method, path)


def test_a_path_no_app_knows_goes_to_the_api(distribution: dict) -> None:
    # So a JSON route added later needs no template edit: the API app answers, or says 404.
    for path in ("/v1/webhooks", "/v1/conversations", "/v1/runs", "/some/new/route"):
        assert _behaviour_for(distribution, path)["TargetOriginId"] == "Api", path


def test_cloudfront_routes_each_request_where_make_dev_does(distribution: dict, apps: tuple[FastAPI, FastAPI]) -> None:
    api, stream = apps
    gateway = Gateway(api, stream)
    for method, path in _stream_routes(stream) + _api_routes(api):
        sample = _sample_path(path)
        scope: dict[str, Any] = {"type": "http", "method": method, "path": sample, "root_path": "", "headers": []}
        local = "Streams" if gateway._is_stream(scope) else "Api"
        assert _behaviour_for(distribution, sample)["TargetOriginId"] == local, (method, path)


def test_only_make_devs_gateway_mints_tokens_the_deployed_stream_app_has_no_such_route(
        distribution: dict, apps: tuple[FastAPI, FastAPI]) -> None:
    api, stream = apps
    assert not [route for route in stream.routes + api.routes
                if isinstance(route, Route) and route.path.startswith(DEV_TOKEN_PATH)]
    # Deployed, CloudFront sends the path to the stream function, which answers 404: no Mint button.
    assert _behaviour_for(distribution, DEV_TOKEN_PATH)["TargetOriginId"] == "Streams"
    with TestClient(stream) as client:
        assert client.get(DEV_TOKEN_PATH).status_code == 404
        assert client.post(DEV_TOKEN_PATH, json={}).status_code in (404, 405)
    # Locally, the gateway puts the dev-token app in front of both.
    local = TestClient(Gateway(api, stream, create_dev_token_app("route-table-secret-0123456789abcdef")))
    assert local.get(DEV_TOKEN_PATH).status_code == 204
    assert local.post(DEV_TOKEN_PATH, json={"org": "my-org"}).json()["token"]


def test_every_behaviour_caches_nothing_and_forwards_every_header_but_host(distribution: dict) -> None:
    behaviours = [distribution["DefaultCacheBehavior"], *distribution["CacheBehaviors"]]
    for behaviour in behaviours:
        assert behaviour["CachePolicyId"] == CACHING_DISABLED
        assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["Compress"] is False
        assert {"GET", "POST", "DELETE", "OPTIONS"} <= set(behaviour["AllowedMethods"])
    # The stream behaviours differ only in their path and origin.
    shapes = [{k: v for k, v in b.items() if k not in ("PathPattern",)} for b in distribution["CacheBehaviors"]]
    assert all(shape == shapes[0] for shape in shapes)


def test_origins_are_the_http_api_and_the_function_url(distribution: dict) -> None:
    origins = {origin["Id"]: origin for origin in distribution["Origins"]}
    assert set(origins) == {"Api", "Streams"}
    assert origins["Api"]["DomainName"] == {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert origins["Streams"]["DomainName"] == {
        "Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": ["StreamFunctionUrl", "FunctionUrl"]}]}]}
    for origin in origins.values():
        assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
        assert "OriginAccessControlId" not in origin  # why: docs/deployment.md, "One base URL"


def test_a_stream_stays_open_between_its_pings(template: dict, distribution: dict) -> None:
    # CloudFront's response timeout is the longest wait between two packets; a stream is silent at
    # most one ping interval. The whole response is bounded only by the stream function's timeout.
    streams = next(o for o in distribution["Origins"] if o["Id"] == "Streams")["CustomOriginConfig"]
    assert PollPolicy().ping_interval * 2 <= streams["OriginReadTimeout"] <= MAX_ORIGIN_READ_TIMEOUT
    assert "ResponseCompletionTimeout" not in streams
    assert template["Resources"]["StreamFunction"]["Properties"]["Timeout"] >= 120


def test_base_url_is_the_one_url_output(template: dict) -> None:
    outputs = template["Outputs"]
    assert outputs["BaseUrl"]["Value"] == {"Fn::Sub": "https://${Distribution.DomainName}"}
    assert not {"ApiUrl", "StreamUrl"} & outputs.keys()
    # Start responses build their URLs from the origin the client called, not from a variable.
    api_env = template["Resources"]["StartRunFunction"]["Properties"]["Environment"]["Variables"]
    assert "STREAM_BASE_URL" not in api_env


def _cors_methods(cors: dict) -> set[str]:
    return set(cors["AllowMethods"])


def test_cors_allows_every_method_each_app_routes(template: dict, apps: tuple[FastAPI, FastAPI]) -> None:
    api, stream = apps
    resources = template["Resources"]
    api_cors = _cors_methods(resources["HttpApi"]["Properties"]["CorsConfiguration"])
    stream_cors = _cors_methods(resources["StreamFunction"]["Properties"]["FunctionUrlConfig"]["Cors"])
    assert {method for method, _ in _api_routes(api)} - {"HEAD"} <= api_cors
    assert {method for method, _ in _stream_routes(stream)} <= stream_cors


def test_the_viewer_request_function_tells_the_api_the_origin_the_client_called(template: dict) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    function = template["Resources"]["PublicOriginFunction"]["Properties"]
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    behaviour = template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["FunctionAssociations"] == [{
        "EventType": "viewer-request",
        "FunctionARN": {"Fn::GetAtt": ["PublicOriginFunction", "FunctionMetadata.FunctionARN"]},
    }]
    # A viewer-request event as CloudFront Functions receive it, with a client's own forged header.
    event = {"version": "1.0", "context": {"eventType": "viewer-request"}, "viewer": {"ip": "203.0.113.10"},
             "request": {"method": "POST", "uri": "/v1/runs", "querystring": {}, "cookies": {},
                         "headers": {"host": {"value": "d111111abcdef8.cloudfront.net"},
                                     PUBLIC_ORIGIN_HEADER: {"value": "https://evil.example"}}}}
    script = function["FunctionCode"] + f"\nconsole.log(JSON.stringify(handler({json.dumps(event)})));\n"
    completed = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr
    request = json.loads(completed.stdout)
    assert request["headers"][PUBLIC_ORIGIN_HEADER] == {"value": "https://d111111abcdef8.cloudfront.net"}
    assert request["uri"] == "/v1/runs" and request["headers"]["host"] == {"value": "d111111abcdef8.cloudfront.net"}
