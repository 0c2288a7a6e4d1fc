"""The SDK against the local stack, sync and async side by side: runs, typed streams, waiting runs
answered through the SDK, the poll page, conversations, listing, and errors by status and code."""

from __future__ import annotations

import pytest

from runwire_client import (
    AsyncRunwire,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EndChunk,
    NotFoundError,
    PermissionDeniedError,
    RequiresActionChunk,
    Runwire,
    TextChunk,
    ToolResultChunk,
    ToolUseChunk,
    UsageChunk,
)

from .conftest import sdk_config

pytestmark = pytest.mark.integration

LOCATION_TOOL = {"name": "get_location", "description": "The user's city", "inputSchema": {"type": "object", "properties": {}}}


def assert_whole_log(chunks: list) -> None:
    """Every event once, numbered 1..N with no gap, ending with exactly one `end`."""
    seqs = [c.seq for c in chunks if c.seq is not None]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert isinstance(chunks[-1], EndChunk) and sum(isinstance(c, EndChunk) for c in chunks) == 1


def text_of(chunks: list) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextChunk))


# --- a run, streamed as typed chunks -------------------------------------------------------------
def test_sync_stream_yields_typed_chunks_to_the_end(client_stack):
    with Runwire(**sdk_config(client_stack)) as client:
        started = client.runs.create(task="What is 17 * 23?", agent_role="chat")
        assert started.status == "queued" and started.run_id.startswith("run_")
        with client.runs.stream(started.run_id) as stream:
            chunks = list(stream)
        run = client.runs.get(started.run_id)
    assert_whole_log(chunks)
    tool_use = next(c for c in chunks if isinstance(c, ToolUseChunk))
    assert (tool_use.name, tool_use.input, tool_use.executor) == ("calculator", {"expression": "17 * 23"}, "server")
    assert next(c for c in chunks if isinstance(c, ToolResultChunk)).output["result"] == 391
    assert [c.type for c in chunks][-2:] == ["usage", "end"] and chunks[-1].status == "succeeded"
    assert text_of(chunks) == run.output and "17 * 23 = 391" in run.output
    assert run.status == "succeeded" and run.usage is not None and run.usage.output_tokens > 0


@pytest.mark.anyio
async def test_async_stream_yields_typed_chunks_to_the_end(client_stack):
    async with AsyncRunwire(**sdk_config(client_stack)) as client:
        started = await client.runs.create(task="What is 17 * 23?", agent_role="chat")
        async with client.runs.stream(started.run_id) as stream:
            chunks = [chunk async for chunk in stream]
        run = await client.runs.get(started.run_id)
    assert_whole_log(chunks)
    assert next(c for c in chunks if isinstance(c, ToolResultChunk)).output["result"] == 391
    usage = next(c for c in chunks if isinstance(c, UsageChunk))
    assert usage.output_tokens == run.usage.output_tokens
    assert text_of(chunks) == run.output and chunks[-1].status == "succeeded"


def test_stream_from_after_n_yields_only_what_follows(client_stack):
    with Runwire(**sdk_config(client_stack)) as client:
        run = client.runs.wait(task="What is 6 * 7?")
        later = list(client.runs.stream(run.run_id, after=2))
    assert [c.seq for c in later] == list(range(3, run.last_seq + 1))


# --- one blocking call, and the poll page --------------------------------------------------------
def test_sync_wait_returns_the_finished_run_and_events_reads_its_log(client_stack):
    with Runwire(**sdk_config(client_stack)) as client:
        run = client.runs.wait(task="What is 6 * 7?", wait_seconds=20)
        page = client.runs.events(run.run_id, after=0)
    assert run.status == "succeeded" and "6 * 7 = 42" in run.output
    assert page.done and page.last_seq == run.last_seq
    assert isinstance(page.events[-1], EndChunk) and page.events[-1].status == "succeeded"
    assert text_of(page.events) == run.output


@pytest.mark.anyio
async def test_async_wait_follows_a_run_that_outlasts_the_servers_wait(client_stack):
    async with AsyncRunwire(**sdk_config(client_stack)) as client:
        # waitSeconds 0: the server answers 202 at once; the SDK waits on with the long-poll.
        run = await client.runs.wait(task="[[scripted tokens=30 delay_ms=30]]", wait_seconds=0)
        page = await client.runs.events(run.run_id, after=run.last_seq - 1)
    assert run.status == "succeeded" and run.output.split() == [str(n) for n in range(1, 31)]
    assert [c.type for c in page.events] == ["end"]


# --- runs that wait for their client, answered through the SDK -----------------------------------
def test_sync_approval_answered_through_the_sdk_carries_the_stream_on(client_stack):
    with Runwire(**sdk_config(client_stack)) as client:
        started = client.runs.create(task="What is 17 * 23?", approval_required=["calculator"])
        chunks = []
        for chunk in client.runs.stream(started.run_id):
            chunks.append(chunk)
            if isinstance(chunk, RequiresActionChunk):
                (action,) = chunk.actions
                assert action.kind == "approval" and action.name == "calculator"
                answered = client.runs.submit_approvals(started.run_id, [{"approval_id": action.approval_id, "approved": True}])
                assert answered.status in ("queued", "running", "succeeded")
    assert_whole_log(chunks)
    assert chunks[-1].status == "succeeded" and "17 * 23 = 391" in text_of(chunks)


@pytest.mark.anyio
async def test_async_client_tool_output_through_the_sdk_reaches_the_model(client_stack):
    async with AsyncRunwire(**sdk_config(client_stack)) as client:
        started = await client.runs.create(task="Where am I? Use get_location.", client_mcp_tools=[LOCATION_TOOL])
        chunks = []
        async for chunk in client.runs.stream(started.run_id):
            chunks.append(chunk)
            if isinstance(chunk, RequiresActionChunk):
                (action,) = chunk.actions
                await client.runs.submit_tool_outputs(
                    started.run_id, [{"tool_call_id": action.tool_call_id, "output": {"city": "Lisbon"}}]
                )
    assert_whole_log(chunks)
    result = next(c for c in chunks if isinstance(c, ToolResultChunk))
    assert result.output == {"city": "Lisbon"} and not result.is_error
    assert "Lisbon" in text_of(chunks) and chunks[-1].status == "succeeded"


# --- conversations and listing -------------------------------------------------------------------
def test_sync_conversation_messages_and_listing(client_stack):
    with Runwire(**sdk_config(client_stack)) as client:
        first = client.runs.wait(task="My name is Alex.", conversation_id="sdk-sync-c1")
        second = client.runs.wait(task="What is my name?", conversation_id="sdk-sync-c1")
        messages = client.conversations.messages("sdk-sync-c1")
        listed = client.runs.list(conversation_id="sdk-sync-c1")
    assert "Your name is Alex" in second.output
    assert [(m.role, m.run_id) for m in messages.messages] == [
        ("user", first.run_id), ("assistant", first.run_id), ("user", second.run_id), ("assistant", second.run_id)
    ]
    assert [r.run_id for r in listed.runs] == [second.run_id, first.run_id] and listed.next_cursor is None


@pytest.mark.anyio
async def test_async_conversation_messages_and_listing(client_stack):
    async with AsyncRunwire(**sdk_config(client_stack)) as client:
        first = await client.runs.wait(task="My name is Sam.", conversation_id="sdk-async-c1")
        second = await client.runs.wait(task="What is my name?", conversation_id="sdk-async-c1")
        messages = await client.conversations.messages("sdk-async-c1")
        listed = await client.runs.list(conversation_id="sdk-async-c1", status="succeeded", limit=1)
    assert "Your name is Sam" in second.output
    assert [m.content for m in messages.messages][0] == "My name is Sam."
    assert [r.run_id for r in listed.runs] == [second.run_id] and listed.next_cursor
    assert first.run_id != second.run_id


# --- errors: status, code and fields from the server's body --------------------------------------
def test_sync_errors_carry_status_code_and_fields(client_stack):
    with Runwire(**sdk_config(client_stack)) as client:
        with pytest.raises(NotFoundError) as missing:
            client.runs.get("run_doesnotexist")
        finished = client.runs.wait(task="Hi")
        with pytest.raises(ConflictError) as conflict:
            client.runs.cancel(finished.run_id)
        with pytest.raises(BadRequestError) as typo:
            client.runs.create(task="Hi", agentrole="support")
        busy = client.runs.create(task="[[scripted tokens=200 delay_ms=20]]", conversation_id="sdk-busy")
        with pytest.raises(ConflictError) as held:
            client.runs.create(task="Me too", conversation_id="sdk-busy")
        client.runs.cancel(busy.run_id)
    assert (missing.value.status, missing.value.code) == (404, "run_not_found")
    assert (conflict.value.status, conflict.value.code) == (409, "run_conflict")
    assert typo.value.status == 400 and "agentrole" in typo.value.message
    assert held.value.code == "conversation_busy" and held.value.active_run_id == busy.run_id
    with Runwire(**sdk_config(client_stack, token="not-a-jwt")) as stranger, pytest.raises(AuthenticationError) as denied:
        stranger.runs.get(finished.run_id)
    assert (denied.value.status, denied.value.code) == (401, "unauthenticated")
    assert denied.value.body["error"]["code"] == "unauthenticated"
    with Runwire(**sdk_config(client_stack, org="another-org")) as elsewhere, pytest.raises(PermissionDeniedError) as forbidden:
        elsewhere.runs.get(finished.run_id)
    assert (forbidden.value.status, forbidden.value.code) == (403, "org_forbidden")


@pytest.mark.anyio
async def test_async_errors_carry_status_code_and_fields(client_stack):
    async with AsyncRunwire(**sdk_config(client_stack)) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.runs.events("run_doesnotexist")
        finished = await client.runs.wait(task="Hi")
        with pytest.raises(ConflictError) as conflict:
            await client.runs.cancel(finished.run_id)
        with pytest.raises(NotFoundError):
            [chunk async for chunk in client.runs.stream("run_doesnotexist")]
    assert (missing.value.status, missing.value.code) == (404, "run_not_found")
    assert (conflict.value.status, conflict.value.code) == (409, "run_conflict")
    async with AsyncRunwire(**sdk_config(client_stack, token="not-a-jwt")) as stranger:
        with pytest.raises(AuthenticationError) as denied:
            await stranger.runs.get(finished.run_id)
    assert denied.value.status == 401
