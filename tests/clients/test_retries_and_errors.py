"""Answers the local stack never gives, from a scripted server, sync and async side by side:
429/503 retried after their Retry-After, bounded, but no 503 on a run's start (it may have started
one); a 402 INSUFFICIENT_BALANCE body mapped to its error with the amounts, another 402 not. And, without a server: chunk types this client does not know kept whole,
and where the configuration comes from."""

from __future__ import annotations

import pytest

from runwire_client import (
    AsyncRunwire,
    ClientConfig,
    InsufficientBalanceError,
    InternalServerError,
    PaymentRequiredError,
    RateLimitError,
    RetryPolicy,
    Runwire,
    TextChunk,
    UnknownChunk,
    parse_chunk,
)
from runwire_client.resources import run_body
from runwire_client.transport import retry_after_seconds

from .network import ScriptedAnswer, ScriptedServer

RUN = {"runId": "run_1", "agentId": "ag_chat", "status": "succeeded", "output": "391", "lastSeq": 7}
UNAVAILABLE = ScriptedAnswer(503, {"error": {"code": "queue_unavailable", "message": "try again"}}, {"Retry-After": "1"})
BUSY = ScriptedAnswer(429, {"error": {"code": "rate_limited", "message": "slow down"}}, {"Retry-After": "1"})
BROKE = {"error": {"code": "INSUFFICIENT_BALANCE", "message": "top up", "required": "0.25", "available": "0.10"}}


def gaps(server: ScriptedServer) -> list[float]:
    times = [t for t, _, _ in server.requests]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def test_sync_503_is_retried_after_its_retry_after_then_succeeds():
    with ScriptedServer([UNAVAILABLE, ScriptedAnswer(200, RUN)]) as server, Runwire(base_url=server.url, token="t") as client:
        run = client.runs.get("run_1")
    assert run.output == "391" and len(server.requests) == 2
    assert gaps(server)[0] >= 1.0, "the retry waited for the server's Retry-After"


@pytest.mark.anyio
async def test_async_503_is_retried_after_its_retry_after_then_succeeds():
    with ScriptedServer([UNAVAILABLE, ScriptedAnswer(200, RUN)]) as server:
        async with AsyncRunwire(base_url=server.url, token="t") as client:
            run = await client.runs.get("run_1")
    assert run.status == "succeeded" and len(server.requests) == 2 and gaps(server)[0] >= 1.0


def test_sync_429_that_does_not_end_raises_after_the_retries_allowed():
    with ScriptedServer([BUSY]) as server, Runwire(base_url=server.url, token="t", retry=RetryPolicy(max_retries=2)) as client:
        with pytest.raises(RateLimitError) as limited:
            client.runs.create(task="Hi")
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert len(server.requests) == 3 and all(gap >= 1.0 for gap in gaps(server))


def test_sync_503_on_a_run_start_is_not_retried_but_an_answer_is():
    """A 503 on `POST /v1/runs` or `/v1/runs/wait` may come after the run was stored and queued:
    trying again would start a second run. An approval is idempotent: sent again."""
    with ScriptedServer([UNAVAILABLE]) as server, Runwire(base_url=server.url, token="t") as client:
        with pytest.raises(InternalServerError) as down:
            client.runs.create(task="Hi")
        assert down.value.status == 503 and len(server.requests) == 1
        with pytest.raises(InternalServerError):
            client.runs.wait(task="Hi")
        assert [path for _, _, path in server.requests] == ["/v1/runs", "/v1/runs/wait"]
    with ScriptedServer([UNAVAILABLE, ScriptedAnswer(202, RUN)]) as server, Runwire(base_url=server.url, token="t") as client:
        run = client.runs.submit_approvals("run_1", [{"approval_id": "ap_1", "approved": True}])
    assert run.status == "succeeded" and len(server.requests) == 2


@pytest.mark.anyio
async def test_async_503_on_a_run_start_is_not_retried_but_a_429_is():
    with ScriptedServer([UNAVAILABLE, ScriptedAnswer(200, RUN)]) as server:
        async with AsyncRunwire(base_url=server.url, token="t") as client:
            with pytest.raises(InternalServerError):
                await client.runs.wait(task="Hi")
    assert len(server.requests) == 1
    with ScriptedServer([BUSY, ScriptedAnswer(200, RUN)]) as server:
        async with AsyncRunwire(base_url=server.url, token="t") as client:
            run = await client.runs.wait(task="Hi")
    assert run.output == "391" and len(server.requests) == 2, "a 429 is refused before anything is stored"


@pytest.mark.anyio
async def test_async_retry_after_longer_than_the_policy_allows_is_not_waited_for():
    hour = ScriptedAnswer(503, {"error": {"code": "storage_error", "message": "down"}}, {"Retry-After": "3600"})
    with ScriptedServer([hour]) as server:
        async with AsyncRunwire(base_url=server.url, token="t") as client:
            with pytest.raises(InternalServerError) as down:
                await client.runs.get("run_1")
    assert down.value.status == 503 and len(server.requests) == 1


def test_sync_402_insufficient_balance_carries_the_amounts():
    with ScriptedServer([ScriptedAnswer(402, BROKE)]) as server, Runwire(base_url=server.url, token="t") as client:
        with pytest.raises(InsufficientBalanceError) as broke:
            client.runs.create(task="Hi")
    assert (broke.value.status, broke.value.code) == (402, "INSUFFICIENT_BALANCE")
    assert (broke.value.required, broke.value.available) == ("0.25", "0.10") and len(server.requests) == 1


@pytest.mark.anyio
async def test_async_402_insufficient_balance_carries_the_amounts():
    with ScriptedServer([ScriptedAnswer(402, BROKE)]) as server:
        async with AsyncRunwire(base_url=server.url, token="t") as client:
            with pytest.raises(InsufficientBalanceError) as broke:
                await client.runs.wait(task="Hi")
    assert broke.value.required == "0.25" and broke.value.message == "top up"


def test_a_402_with_another_code_is_not_insufficient_balance():
    other = {"error": {"code": "plan_required", "message": "upgrade your plan"}}
    with ScriptedServer([ScriptedAnswer(402, other)]) as server, Runwire(base_url=server.url, token="t") as client:
        with pytest.raises(PaymentRequiredError) as refused:
            client.runs.create(task="Hi")
    assert not isinstance(refused.value, InsufficientBalanceError)
    assert (refused.value.status, refused.value.code, refused.value.message) == (402, "plan_required", "upgrade your plan")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0", 0.0), ("Fri, 27 Nov 2026 00:00:10 GMT", 10.0), ("soon", None), (None, None)],
    ids=["delay-seconds", "zero", "http-date", "unreadable", "absent"],
)
def test_retry_after_reads_seconds_and_http_dates(header, seconds):
    assert retry_after_seconds(header, now=1795737600.0) == seconds  # 2026-11-27T00:00:00Z


def test_a_chunk_type_this_client_does_not_know_is_kept_whole():
    chunk = parse_chunk({"type": "reasoning", "text": "hmm", "tokens": 3}, seq=4)
    assert isinstance(chunk, UnknownChunk) and chunk.type == "reasoning" and chunk.seq == 4
    assert chunk.wire() == {"type": "reasoning", "text": "hmm", "tokens": 3}
    known = parse_chunk({"type": "text", "text": "Hi", "newField": 1}, seq=5)
    assert isinstance(known, TextChunk) and known.text == "Hi" and known.wire()["newField"] == 1
    changed = parse_chunk({"type": "text"}, seq=6)
    assert isinstance(changed, UnknownChunk) and changed.type == "text", "a known type whose shape changed stays whole"


def test_configuration_from_arguments_else_the_environment():
    environ = {"RUNWIRE_BASE_URL": "https://api.example.com/", "RUNWIRE_TOKEN": "env-token", "RUNWIRE_ORG": "acme"}
    from_env = ClientConfig.resolve(environ=environ)
    assert (from_env.base_url, from_env.stream_url, from_env.token, from_env.org) == (
        "https://api.example.com", "https://api.example.com", "env-token", "acme"
    ), "the stream URL defaults to the base URL"
    assert from_env.headers()["Authorization"] == "Bearer env-token" and from_env.headers()["orgid"] == "acme"
    given = ClientConfig.resolve(base_url="http://127.0.0.1:9", token="arg-token", org=None,
                                 environ={**environ, "RUNWIRE_STREAM_URL": "https://stream.example.com"})
    assert (given.base_url, given.stream_url, given.token) == ("http://127.0.0.1:9", "https://stream.example.com", "arg-token")
    bare = ClientConfig.resolve(environ={})
    assert bare.base_url == "http://127.0.0.1:8000" and bare.token is None and "orgid" not in bare.headers()


def test_run_fields_in_snake_case_become_camel_case_and_camel_case_stays_as_given(monkeypatch):
    """Some pydantic 2.x releases' `to_camel` turned `agentRole` into `agentrole` (an unknown field,
    a 400): keys already camelCase are not passed to it."""
    import runwire_client.resources as resources

    monkeypatch.setattr(resources, "to_camel", lambda key: key.title().replace("_", "")[:1].lower()
                        + key.title().replace("_", "")[1:])  # the old releases' to_camel: pascal, first letter lowered
    body = run_body("Hi", {"agentRole": "chat", "conversation_id": "c1", "multitaskStrategy": None})
    assert body == {"task": "Hi", "agentRole": "chat", "conversationId": "c1"}
