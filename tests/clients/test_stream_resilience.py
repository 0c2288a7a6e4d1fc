"""A stream through a bad network, sync and async: a connection cut mid-answer is resumed with
Last-Event-ID (nothing lost, nothing twice); a stream held back by a buffering proxy falls back to
the long-poll while the run goes on."""

from __future__ import annotations

import threading

import pytest

from runwire_client import AsyncRunwire, EndChunk, RequiresActionChunk, Runwire, StreamError, StreamOptions, TextChunk

from .conftest import sdk_config
from .network import StreamProxy

pytestmark = pytest.mark.integration

LONG_ANSWER = "[[scripted tokens=60 delay_ms=25]]"
"""60 tokens over about 1.5 s: many events to cut between, and a run still going when a proxy stalls."""
FAST_OPTIONS = StreamOptions(reconnect_backoff_seconds=0.05, stall_seconds=1.5, poll_wait_seconds=5)


def assert_every_token_once(chunks: list, run_output: str) -> None:
    seqs = [c.seq for c in chunks]
    assert seqs == list(range(1, len(seqs) + 1)), f"lost or repeated events: {seqs}"
    assert isinstance(chunks[-1], EndChunk) and chunks[-1].status == "succeeded"
    text = "".join(c.text for c in chunks if isinstance(c, TextChunk))
    assert text == run_output and text.split() == [str(n) for n in range(1, 61)]


def test_sync_stream_resumes_after_cut_connections_without_loss_or_duplicates(client_stack):
    with StreamProxy(client_stack.base_url, cut_after=3, cuts=2) as proxy, \
            Runwire(**sdk_config(client_stack, stream_url=proxy.url, stream_options=FAST_OPTIONS)) as client:
        started = client.runs.create(task=LONG_ANSWER)
        stream = client.runs.stream(started.run_id)
        chunks = list(stream)
        run = client.runs.get(started.run_id)
    assert_every_token_once(chunks, run.output)
    assert proxy.resume_ids == [None, "3", "6"], "each reconnect resumes after the last event seen"
    assert stream.progress.reconnects == 2 and stream.progress.mode == "stream"


@pytest.mark.anyio
async def test_async_stream_resumes_after_cut_connections_without_loss_or_duplicates(client_stack):
    with StreamProxy(client_stack.base_url, cut_after=3, cuts=3) as proxy:
        async with AsyncRunwire(**sdk_config(client_stack, stream_url=proxy.url, stream_options=FAST_OPTIONS)) as client:
            started = await client.runs.create(task=LONG_ANSWER)
            stream = client.runs.stream(started.run_id)
            chunks = [chunk async for chunk in stream]
            run = await client.runs.get(started.run_id)
    assert_every_token_once(chunks, run.output)
    assert proxy.resume_ids == [None, "3", "6", "9"]
    assert stream.progress.reconnects == 3


def test_sync_stream_gives_up_after_its_bounded_reconnects(client_stack):
    options = StreamOptions(max_reconnects=2, reconnect_backoff_seconds=0.05)
    with StreamProxy(client_stack.base_url, cut_after=0, cuts=1000) as proxy, \
            Runwire(**sdk_config(client_stack, stream_url=proxy.url, stream_options=options)) as client:
        started = client.runs.create(task=LONG_ANSWER)
        with pytest.raises(StreamError, match="3 times in a row"):
            list(client.runs.stream(started.run_id))
    assert proxy.resume_ids == [None, None, None], "the first try and two reconnects, none of which got an event"


def test_sync_stream_held_by_a_buffering_proxy_falls_back_to_long_polling(client_stack):
    with StreamProxy(client_stack.base_url, hold=True) as proxy, \
            Runwire(**sdk_config(client_stack, stream_url=proxy.url, stream_options=FAST_OPTIONS)) as client:
        started = client.runs.create(task=LONG_ANSWER)
        stream = client.runs.stream(started.run_id)
        chunks = list(stream)
        run = client.runs.get(started.run_id)
    assert_every_token_once(chunks, run.output)
    assert stream.progress.mode == "poll" and proxy.resume_ids == [None], "one held stream, then the long-poll"


@pytest.mark.anyio
async def test_async_stream_held_by_a_buffering_proxy_falls_back_to_long_polling(client_stack):
    with StreamProxy(client_stack.base_url, hold=True) as proxy:
        async with AsyncRunwire(**sdk_config(client_stack, stream_url=proxy.url, stream_options=FAST_OPTIONS)) as client:
            started = await client.runs.create(task=LONG_ANSWER)
            stream = client.runs.stream(started.run_id)
            chunks = [chunk async for chunk in stream]
            run = await client.runs.get(started.run_id)
    assert_every_token_once(chunks, run.output)
    assert stream.progress.mode == "poll"


def test_idle_stream_of_a_waiting_run_is_not_mistaken_for_a_buffered_one(client_stack):
    """A run waiting for approval writes nothing: a stall with no new event on the server
    reconnects the stream (after the same event) instead of switching to the long-poll."""
    options = StreamOptions(stall_seconds=1.0, reconnect_backoff_seconds=0.05)
    with StreamProxy(client_stack.base_url) as proxy, \
            Runwire(**sdk_config(client_stack, stream_url=proxy.url, stream_options=options)) as client:
        started = client.runs.create(task="What is 2 + 2?", approval_required=["calculator"])
        chunks, answer = [], None
        for chunk in client.runs.stream(started.run_id):
            chunks.append(chunk)
            if isinstance(chunk, RequiresActionChunk):
                approval = {"approval_id": chunk.actions[0].approval_id, "approved": True}
                # Answered 2.5 s later, from another thread, while this one keeps reading the stream.
                answer = threading.Timer(2.5, client.runs.submit_approvals, (started.run_id, [approval]))
                answer.start()
                waiting_at = chunk.seq
        assert answer is not None
        answer.join()
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1)) and chunks[-1].status == "succeeded"
    reconnects = proxy.resume_ids[1:]
    assert len(reconnects) >= 2 and set(reconnects[:2]) == {str(waiting_at)}, proxy.resume_ids
