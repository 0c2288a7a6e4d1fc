"""Each Lambda handler invoked with its sample event from events/ (what `sam local invoke` would
send), with its storage on a moto server built from template.yaml."""

from __future__ import annotations

import copy
import importlib
import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

from devstack.worker_loop import LocalLambdaContext
from runwire.adapters.dynamodb import DynamoDBRunStore
from runwire.adapters.tokens import issue_token
from runwire.core.models import RunRecord, RunRequest, RunStatus

EVENTS = Path(__file__).resolve().parents[2] / "events"
SECRET = "functional-test-secret-0123456789abcdef"
SAMPLE_RUN_ID = "run_0123456789abcdef0123456789abcdef"


def sample_event(name: str) -> dict:
    text = (EVENTS / name).read_text().replace("{{TOKEN}}", issue_token(
        SECRET, subject="u1", org="my-org", lifetime_seconds=600, now=time.time()))
    return json.loads(text)


def start_event() -> dict:
    """The sample start, on a conversation of its own: no worker runs here, so a second start on the
    sample's conversation would find the first still queued (409, conversation_busy)."""
    event = sample_event("start_run.json")
    body = json.loads(event["body"])
    event["body"] = json.dumps({**body, "conversationId": f"c-{uuid.uuid4().hex[:12]}"})
    return event


@pytest.fixture(scope="module")
def functions(local_resources, moto_endpoint):
    saved = dict(os.environ)
    os.environ.update({
        "AWS_ENDPOINT_URL": moto_endpoint,
        "RUNS_TABLE_NAME": local_resources.table_name,
        "RUN_QUEUE_URL": local_resources.queue_url,
        "JWT_SECRET": SECRET,
        "MODEL_PROVIDER": "scripted",
        "SCRIPTED_TOKEN_DELAY_MS": "1",
    })
    modules = {name: importlib.reload(importlib.import_module(f"functions.{name}.app"))
               for name in ("start_run", "worker", "stream")}
    yield modules
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def store(functions, dynamodb_client, local_resources):
    return DynamoDBRunStore(dynamodb_client, local_resources.table_name, time.time)


def test_start_run_handler_answers_202_and_stores_and_enqueues_the_run(functions, store, sqs_client, local_resources):
    response = functions["start_run"].handler(start_event(), LocalLambdaContext())
    assert response["statusCode"] == 202, response
    body = json.loads(response["body"])
    assert body["streamId"] == body["runId"] and body["status"] == "queued"
    assert body["streamUrl"].endswith(f"/ai/stream/{body['runId']}")
    run = store.get_run("my-org", body["runId"])
    assert run is not None and run.request.task == "Hello" and run.agent_id == "ag_chat"
    messages = sqs_client.receive_message(QueueUrl=local_resources.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert {"runId": body["runId"], "orgId": "my-org"} in [json.loads(m["Body"]) for m in messages]


def test_start_run_handler_refuses_a_bad_body_with_400(functions):
    event = start_event()
    event["body"] = json.dumps({"agentRole": "chat"})
    response = functions["start_run"].handler(event, LocalLambdaContext())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_request"


def seed_sample_run(store) -> None:
    if store.get_run("my-org", SAMPLE_RUN_ID) is None:
        store.create_run(RunRecord(
            run_id=SAMPLE_RUN_ID, org_id="my-org", user_id="u1", agent_id="ag_chat", status=RunStatus.QUEUED,
            request=RunRequest(task="[[scripted tokens=12]]"), created_at=time.time(), expires_at=int(time.time()) + 600,
        ))


# These call the Mangum handler, so they come before the async tests: once those have run, the main
# thread has no current event loop for it ("There is no current event loop in thread 'MainThread'").

def test_start_response_urls_point_at_the_origin_the_client_called_through_cloudfront(functions):
    # What API Gateway passes on from CloudFront: its own Host, and the origin the distribution's
    # viewer-request function (template.yaml, PublicOriginFunction) wrote for the client.
    event = start_event()
    event["headers"]["x-runwire-public-origin"] = "https://d111111abcdef8.cloudfront.net"
    body = json.loads(functions["start_run"].handler(event, LocalLambdaContext())["body"])
    run_id = body["runId"]
    assert body["streamUrl"] == f"https://d111111abcdef8.cloudfront.net/ai/stream/{run_id}"
    assert body["pollUrl"] == f"https://d111111abcdef8.cloudfront.net/v1/runs/{run_id}"
    assert body["eventsUrl"] == f"https://d111111abcdef8.cloudfront.net/v1/runs/{run_id}/events"


def test_start_response_urls_use_the_request_origin_without_cloudfront(functions):
    event = start_event()
    event["headers"]["x-runwire-public-origin"] = "https://evil.example/path?x=1"  # not an origin: ignored
    body = json.loads(functions["start_run"].handler(event, LocalLambdaContext())["body"])
    assert body["streamUrl"] == f"https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/ai/stream/{body['runId']}"

def test_worker_handler_runs_the_sample_run_to_its_end(functions, store):
    seed_sample_run(store)
    result = functions["worker"].handler(sample_event("worker.json"), LocalLambdaContext())
    assert result == {"batchItemFailures": []}
    run = store.get_run("my-org", SAMPLE_RUN_ID)
    assert run.status is RunStatus.SUCCEEDED and run.usage.output_tokens == 12
    chunks = store.read_chunks("my-org", SAMPLE_RUN_ID, after=0)
    assert chunks[-1].chunk.type == "end" and chunks[-2].chunk.type == "usage"


def test_worker_handler_reports_an_unreadable_record_as_a_batch_item_failure(functions):
    event = sample_event("worker.json")
    good = copy.deepcopy(event["Records"][0])
    bad = copy.deepcopy(good)
    bad["messageId"] = "bad-message"
    bad["body"] = "not json"
    event["Records"] = [bad, good]
    result = functions["worker"].handler(event, LocalLambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad-message"}]}


@pytest.mark.anyio
async def test_stream_app_serves_the_sample_function_url_request_from_last_event_id(functions, store):
    seed_sample_run(store)
    if store.get_run("my-org", SAMPLE_RUN_ID).status is not RunStatus.SUCCEEDED:
        functions["worker"].handler(sample_event("worker.json"), LocalLambdaContext())
    event = sample_event("stream.json")
    # What the Lambda Web Adapter does with a Function URL event: replay it as an HTTP request.
    transport = httpx.ASGITransport(app=functions["stream"].app)
    async with httpx.AsyncClient(transport=transport, base_url="https://" + event["headers"]["host"]) as client:
        response = await client.get(event["rawPath"], headers=event["headers"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.split("\n\n") if b]
    assert blocks[0].startswith("id: 3\n")
    assert blocks[-1] == f"id: {2 + len(blocks)}\nevent: end\ndata: {{\"status\":\"succeeded\"}}"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_concurrent_worker_invocations_report_only_their_own_failures(functions, store):
    # The local event source mapping (like several Lambda containers) runs invocations side by side:
    # a bad message must not fail the runs handled beside it, nor be reported by them.
    from concurrent.futures import ThreadPoolExecutor

    template = sample_event("worker.json")["Records"][0]
    run_ids = ["run_" + uuid.uuid4().hex for _ in range(9)]
    for run_id in run_ids:
        store.create_run(RunRecord(
            run_id=run_id, org_id="my-org", user_id="u1", agent_id="ag_chat", status=RunStatus.QUEUED,
            request=RunRequest(task="[[scripted tokens=20 delay_ms=10]]"), created_at=time.time(),
            expires_at=int(time.time()) + 600,
        ))

    def invoke(index: int) -> object:
        record = copy.deepcopy(template)
        record["messageId"] = f"message-{index}"
        record["body"] = json.dumps({"runId": run_ids[index - 1], "orgId": "my-org"}) if index else "not json"
        try:
            return functions["worker"].handler({"Records": [record]}, LocalLambdaContext())
        except Exception as exc:  # a batch whose every record failed is an invocation error (SQS retries it)
            return type(exc).__name__

    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(invoke, index) for index in range(1, 10)]
        time.sleep(0.05)  # the runs are under way when the bad message arrives
        bad = invoke(0)
        results = [future.result() for future in futures]
    assert bad == "BatchProcessingError"
    assert results == [{"batchItemFailures": []}] * 9
    assert all(store.get_run("my-org", run_id).status is RunStatus.SUCCEEDED for run_id in run_ids)


@pytest.mark.anyio
async def test_a_start_whose_message_cannot_be_sent_answers_503_and_leaves_no_run_behind(
    functions, local_resources, moto_endpoint, dynamodb_client
):
    from runwire.wiring import build_api_app, load_settings

    gone = local_resources.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    app = build_api_app(load_settings({**os.environ, "RUN_QUEUE_URL": gone}))

    def runs_of_org() -> int:
        items = dynamodb_client.scan(TableName=local_resources.table_name, FilterExpression="orgId = :org AND sk = :run",
                                     ExpressionAttributeValues={":org": {"S": "queue-down"}, ":run": {"S": "RUN"}})
        return items["Count"]

    token = issue_token(SECRET, subject="u1", org="queue-down", lifetime_seconds=600, now=time.time())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.post("/v1/runs", json={"task": "hello"},
                                     headers={"Authorization": f"Bearer {token}", "orgid": "queue-down"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_unavailable"
    assert runs_of_org() == 0, "a run nobody will work on must not be left stored"

