"""Every 400/401/403/404 the API promises, as clear JSON, with nothing half-written."""

from __future__ import annotations

import time

import boto3
import jwt
import pytest

from runwire.adapters.dynamodb import RUN_SORT_KEY

from .conftest import SECRET


def assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


def count_runs(stack):
    """The stored runs (not their chunks, which runs started by earlier tests may still be writing)."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.moto_endpoint)
    table = next(t for t in dynamodb.list_tables()["TableNames"])
    return dynamodb.scan(TableName=table, Select="COUNT", FilterExpression="sk = :run",
                         ExpressionAttributeValues={":run": {"S": RUN_SORT_KEY}})["Count"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "task"),
        ({"task": ""}, "task"),
        ({"task": 5}, "task"),
        ({"task": "x", "conversationHistory": {}}, "conversationHistory"),
        ({"task": "x", "settings": {"model": 1}}, "settings.model"),
        ({"task": "x", "memoryTtl": "soon"}, "memoryTtl"),
        ({"task": "x", "files": "report.pdf"}, "files"),
        ({"task": "x", "images": [{"url": 3}]}, "images"),
    ],
)
def test_bad_body_is_400_naming_the_field_and_stores_nothing(stack, client, body, field):
    before = count_runs(stack)
    for path in ("/v1/runs", "/ai/agent/stream"):
        response = client.post(f"{stack.base_url}{path}", json=body, headers=stack.headers())
        assert_error(response, 400, "invalid_request")
        assert field in response.json()["error"]["message"]
    assert count_runs(stack) == before


def test_unknown_agent_role_is_400(stack, client):
    response = client.post(f"{stack.base_url}/ai/agent/stream", json={"task": "x", "agentRole": "wizard"}, headers=stack.headers())
    assert_error(response, 400, "unknown_agent")
    assert "chat" in response.json()["error"]["message"]


def test_malformed_json_is_400(stack, client):
    response = client.post(f"{stack.base_url}/v1/runs", content=b"{not json", headers={**stack.headers(), "Content-Type": "application/json"})
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer " + jwt.encode({"sub": "u", "org": "my-org", "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": "u", "org": "my-org", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "Bearer " + jwt.encode({"sub": "u", "org": "my-org", "exp": int(time.time()) + 60}, SECRET + "x", algorithm="HS256"),
    ],
    ids=["missing", "garbage", "basic", "expired", "alg-none", "wrong-key"],
)
def test_bad_or_missing_token_is_401_on_every_route(stack, client, authorization):
    headers = {"orgid": "my-org"} | ({"Authorization": authorization} if authorization else {})
    run_id = "run_00000000000000000000000000000000"
    for method, path in [
        ("POST", "/v1/runs"), ("POST", "/ai/agent/stream"), ("GET", f"/v1/runs/{run_id}"),
        ("GET", f"/v1/runs/{run_id}/events"), ("POST", f"/v1/runs/{run_id}/cancel"),
        ("GET", f"/v1/runs/{run_id}/stream"), ("GET", f"/ai/stream/{run_id}"),
    ]:
        response = client.request(method, f"{stack.base_url}{path}", json={"task": "x"}, headers=headers)
        assert_error(response, 401, "unauthenticated")


def test_org_not_in_token_is_403(stack, client):
    token = stack.token(org="my-org", orgs=["second-org"])
    for org, status in [("my-org", 202), ("second-org", 202), ("third-org", 403)]:
        response = client.post(f"{stack.base_url}/v1/runs", json={"task": "[[scripted tokens=1]]"},
                               headers={"orgid": org, "Authorization": f"Bearer {token}"})
        assert response.status_code == status, response.text
    run = stack.start(client, "[[scripted tokens=1]]")
    response = client.get(f"{stack.base_url}/ai/stream/{run['streamId']}?orgid=other-org", headers={"Authorization": f"Bearer {stack.token()}"})
    assert_error(response, 403, "org_forbidden")


def test_unknown_run_is_404_on_every_route(stack, client):
    run_id = "run_ffffffffffffffffffffffffffffffff"
    for method, path in [("GET", f"/v1/runs/{run_id}"), ("GET", f"/v1/runs/{run_id}/events"),
                         ("POST", f"/v1/runs/{run_id}/cancel"), ("GET", f"/v1/runs/{run_id}/stream"), ("GET", f"/ai/stream/{run_id}")]:
        assert_error(client.request(method, f"{stack.base_url}{path}", headers=stack.headers()), 404, "run_not_found")


def test_another_orgs_run_is_404_on_every_route(stack, client):
    run = stack.start(client, "[[scripted tokens=1]]", org="my-org")
    other = stack.headers("other-org")
    for method, path in [("GET", f"/v1/runs/{run['runId']}"), ("GET", f"/v1/runs/{run['runId']}/events"),
                         ("POST", f"/v1/runs/{run['runId']}/cancel"), ("GET", f"/v1/runs/{run['runId']}/stream"),
                         ("GET", f"/ai/stream/{run['runId']}")]:
        assert_error(client.request(method, f"{stack.base_url}{path}", headers=other), 404, "run_not_found")


def test_expired_stream_is_404_although_ttl_has_not_deleted_it(stack, client):
    run = stack.start(client, "[[scripted tokens=1]]")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.moto_endpoint)
    table = dynamodb.list_tables()["TableNames"][0]
    dynamodb.update_item(
        TableName=table, Key={"pk": {"S": f"RUN#my-org#{run['runId']}"}, "sk": {"S": "RUN"}},
        UpdateExpression="SET expiresAt = :past", ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": f"RUN#my-org#{run['runId']}"}, "sk": {"S": "RUN"}}).get("Item")
    assert_error(client.get(f"{stack.base_url}/ai/stream/{run['streamId']}", headers=stack.headers()), 404, "run_not_found")
    assert_error(client.get(f"{stack.base_url}/v1/runs/{run['runId']}", headers=stack.headers()), 404, "run_not_found")


def test_bad_last_event_id_is_400(stack, client):
    run = stack.start(client, "[[scripted tokens=1]]")
    response = client.get(f"{stack.base_url}/ai/stream/{run['streamId']}", headers={**stack.headers(), "Last-Event-ID": "abc"})
    assert_error(response, 400, "invalid_request")


def test_unknown_route_is_a_json_404(stack, client):
    assert_error(client.get(f"{stack.base_url}/nope", headers=stack.headers()), 404, "not_found")


def test_local_openapi_page_lists_the_api_and_the_stream_routes(stack, client):
    assert client.get(f"{stack.base_url}/docs").status_code == 200
    paths = client.get(f"{stack.base_url}/openapi.json").json()["paths"]
    for path in ("/v1/runs", "/v1/runs/wait", "/ai/agent/stream", "/ai/stream/{stream_id}", "/v1/runs/stream",
                 "/api/agent/chat/stream", "/chat/stream", "/chat/run"):
        assert path in paths


def test_an_oversized_request_is_413_and_stores_nothing(stack, client):
    before = count_runs(stack)
    body = {"task": "x", "images": [{"data": "A" * 400_000, "mimeType": "image/png"}]}
    response = client.post(f"{stack.base_url}/v1/runs", json=body, headers=stack.headers())
    assert_error(response, 413, "request_too_large")
    assert "images[].url" in response.json()["error"]["message"]
    assert count_runs(stack) == before


def test_an_absurdly_long_run_id_is_404_not_a_storage_error(stack, client):
    run_id = "run_" + "x" * 3000
    for method, path in [("GET", f"/v1/runs/{run_id}"), ("GET", f"/v1/runs/{run_id}/events"),
                         ("POST", f"/v1/runs/{run_id}/cancel"), ("GET", f"/ai/stream/{run_id}")]:
        assert_error(client.request(method, f"{stack.base_url}{path}", headers=stack.headers()), 404, "run_not_found")
    response = client.get(f"{stack.base_url}/api/agent/chat/{'c' * 3000}/stream", headers=stack.headers())
    assert response.status_code == 204


def test_a_cookie_authenticates_gets_but_never_a_post(stack, client):
    run = stack.start(client, "[[scripted tokens=2]]")
    cookies = {"access_token": stack.token()}
    import httpx

    with httpx.Client(timeout=30, cookies=cookies) as browser:
        assert browser.get(f"{stack.base_url}/v1/runs/{run['runId']}").status_code == 200
        assert_error(browser.post(f"{stack.base_url}/v1/runs/{run['runId']}/cancel"), 401, "unauthenticated")
        assert_error(browser.post(f"{stack.base_url}/v1/runs", json={"task": "x"}), 401, "unauthenticated")


def test_an_empty_orgid_means_the_tokens_own_org(stack, client):
    response = client.post(f"{stack.base_url}/v1/runs?orgid=", json={"task": "[[scripted tokens=1]]"},
                           headers={"Authorization": f"Bearer {stack.token()}"})
    assert response.status_code == 202, response.text
