"""AnthropicProvider with the real anthropic SDK, over real HTTP, against devstack's Messages server.

Every stream runs in a background thread joined with a deadline: a hang fails the test rather
than the suite. The deadlines are generous; they tell "ends" from "hangs", not fast from slow.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.messages_server import MessagesServer, Reply, estimate_input_tokens
from runwire.adapters.anthropic_provider import AnthropicProvider
from runwire.core.cancellation import CancellationToken
from runwire.core.models import RunRecord, RunRequest, RunStatus, ToolResultChunk
from runwire.core.ports import ModelEvent, ModelRequest, TextDelta, ToolCallRequested, ToolSpec, TurnEnded, UsageUpdated
from runwire.core.stepper import RunTools, Stepper
from runwire.core.tools import calculator_tool
from runwire.core.transcript import Message, TextBlock, TokenUsage, TranscriptBuilder, opening_messages
from runwire.errors import (
    ModelOverloadedError,
    ModelRateLimitedError,
    ModelRequestRejectedError,
    ModelStreamInterruptedError,
    ModelUnavailableError,
)

pytestmark = pytest.mark.integration

API_KEY = "sk-ant-test-0123456789"
HANG = 15.0
"""Seconds after which a stream that has not ended counts as hung."""


@pytest.fixture
def server() -> Iterator[MessagesServer]:
    with MessagesServer() as running:
        yield running


@pytest.fixture
def provider(server: MessagesServer) -> AnthropicProvider:
    # No retries, so each scripted reply is exactly one request; the retry test builds its own.
    return AnthropicProvider(api_key=API_KEY, base_url=server.base_url, max_retries=0, read_timeout=30)


def ask(text: str = "Say hello.", **overrides: Any) -> ModelRequest:
    fields: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "system": "You are a terse assistant.",
        "messages": [Message("user", (TextBlock(text),))],
    }
    return ModelRequest(**{**fields, **overrides})


class BackgroundStream:
    """Iterates `provider.stream(...)` on its own thread, like the worker's producer does."""

    def __init__(self, provider: AnthropicProvider, request: ModelRequest, cancellation: CancellationToken) -> None:
        self.events: list[ModelEvent] = []
        self.error: BaseException | None = None
        self.text_seen = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(provider, request, cancellation), daemon=True)

    def start(self) -> BackgroundStream:
        self._thread.start()
        return self

    def wait_for_text_deltas(self, count: int, within: float = HANG) -> None:
        with self.text_seen:
            assert self.text_seen.wait_for(lambda: len(self.texts()) >= count or not self._thread.is_alive(), within)
        assert len(self.texts()) >= count, f"the stream ended after {self.texts()!r} ({self.error!r})"

    def join(self, within: float = HANG) -> BackgroundStream:
        self._thread.join(within)
        assert not self._thread.is_alive(), f"the stream was still running after {within} s: it hangs"
        return self

    def texts(self) -> list[str]:
        return [event.text for event in self.events if isinstance(event, TextDelta)]

    def _run(self, provider: AnthropicProvider, request: ModelRequest, cancellation: CancellationToken) -> None:
        try:
            for event in provider.stream(request, cancellation):
                with self.text_seen:
                    self.events.append(event)
                    self.text_seen.notify_all()
        except BaseException as exc:
            self.error = exc
        finally:
            with self.text_seen:
                self.text_seen.notify_all()


def stream(
    provider: AnthropicProvider, request: ModelRequest, cancellation: CancellationToken | None = None
) -> BackgroundStream:
    return BackgroundStream(provider, request, cancellation or CancellationToken()).start().join()


def completed(provider: AnthropicProvider, request: ModelRequest) -> list[ModelEvent]:
    run = stream(provider, request)
    assert run.error is None, repr(run.error)
    return run.events


# --- the happy path ---------------------------------------------------------------------------
def test_text_deltas_arrive_in_order_and_concatenate_to_the_reply(server, provider):
    reply = "The quick brown fox jumps over the lazy dog, twice."
    server.script(Reply.text(reply))

    events = completed(provider, ask())

    texts = [event.text for event in events if isinstance(event, TextDelta)]
    assert len(texts) == len(reply.split())  # one delta per word: streamed, not delivered whole
    assert "".join(texts) == reply
    assert events[-1] == TurnEnded("end_turn", [{"type": "text", "text": reply}])


def test_usage_reports_input_tokens_at_message_start_and_output_tokens_at_message_delta(server, provider):
    server.script(Reply.text("One two three four five."))

    events = completed(provider, ask())

    expected_input = estimate_input_tokens(server.requests[0].body)
    usage = [event for event in events if isinstance(event, UsageUpdated)]
    assert events[0] == usage[0], "usage is reported as soon as message_start arrives, before any text"
    assert usage[0].input_tokens == expected_input
    assert usage[-1] == UsageUpdated("claude-sonnet-4-5", expected_input, 5)


def test_tool_use_is_yielded_with_parsed_input_and_the_turn_ends_with_request_shaped_blocks(server, provider):
    arguments = {"expression": "(17 * 23) + 4", "note": "streamed as several input_json_delta pieces"}
    server.script(Reply.tool_use("calculator", arguments, text_before="Let me work that out.", tool_use_id="toolu_01"))

    events = completed(provider, ask("What is (17 * 23) + 4?", tools=[calculator_tool().spec]))

    assert [event for event in events if isinstance(event, ToolCallRequested)] == [
        ToolCallRequested("toolu_01", "calculator", arguments)
    ]
    assert events[-1] == TurnEnded(
        "tool_use",
        [
            {"type": "text", "text": "Let me work that out."},
            {"type": "tool_use", "id": "toolu_01", "name": "calculator", "input": arguments},
        ],
    )


def test_a_tool_called_without_arguments_gets_an_empty_input(server, provider):
    server.script(Reply.tool_use("current_time", {}, tool_use_id="toolu_02"))

    events = completed(provider, ask("What time is it?"))

    assert ToolCallRequested("toolu_02", "current_time", {}) in events


def test_stepper_completes_a_calculator_round_trip_and_sends_the_tool_result_back(server, provider):
    server.script(
        Reply.tool_use("calculator", {"expression": "(17 * 23) + 4"}, tool_use_id="toolu_calc"),
        Reply.text("(17 * 23) + 4 = 395."),
    )
    emitted: list[Any] = []
    calculator = calculator_tool()
    tools = RunTools({"calculator": calculator}, {}, frozenset())
    stepper = Stepper(provider, tools, ask("", tools=[calculator.spec]), max_steps=4, clock=time.time)
    request = RunRequest(task="What is (17 * 23) + 4?")
    run = RunRecord(run_id="run_1", org_id="acme", user_id="u1", agent_id="ag_chat", status=RunStatus.RUNNING,
                    request=request, created_at=time.time(), expires_at=int(time.time()) + 300)
    transcript = TranscriptBuilder(opening_messages(request, []))

    worker = threading.Thread(
        target=stepper.run, args=(run, transcript, emitted.append, CancellationToken()),
        kwargs={"deadline": time.time() + 60}, daemon=True,
    )
    worker.start()
    worker.join(HANG)
    assert not worker.is_alive(), "the stepper hangs"

    assert [event for event in emitted if isinstance(event, ToolResultChunk)] == [
        ToolResultChunk(id="toolu_calc", output={"expression": "(17 * 23) + 4", "result": 395})
    ]
    assert "".join(event.text for event in emitted if isinstance(event, TextDelta)) == "(17 * 23) + 4 = 395."
    assert len(server.requests) == 2
    first, second = (recorded.body["messages"] for recorded in server.requests)
    assert first == [{"role": "user", "content": "What is (17 * 23) + 4?"}]
    assert second[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_calc", "name": "calculator", "input": {"expression": "(17 * 23) + 4"}}
        ],
    }
    (tool_result,) = second[2]["content"]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "toolu_calc"
    assert json.loads(tool_result["content"])["result"] == 395
    usage = [event for event in emitted if isinstance(event, TokenUsage)]
    first_call_input = estimate_input_tokens(server.requests[0].body)
    second_call_input = estimate_input_tokens(server.requests[1].body)
    assert usage[-1].input_tokens == first_call_input + second_call_input, "usage is summed over both calls"


def test_system_prompt_model_tools_sampling_settings_and_api_key_reach_the_server(server, provider):
    tool = ToolSpec("lookup", "Look a word up.", {"type": "object", "properties": {"word": {"type": "string"}}})
    request = ask(
        "Define 'terse'.",
        model="claude-test-override",
        system="Answer in one sentence.",
        tools=[tool],
        max_tokens=321,
        temperature=0.2,
        top_p=0.9,
        stop_sequences=["STOP"],
    )

    completed(provider, request)

    (received,) = server.requests
    assert received.path == "/v1/messages"
    assert received.api_key == API_KEY  # anthropic 2.11 sends it as `Authorization: Bearer`
    body = received.body
    assert body["stream"] is True
    assert body["model"] == "claude-test-override"
    assert body["system"] == "Answer in one sentence."
    assert body["messages"] == [{"role": "user", "content": "Define 'terse'."}]
    assert body["tools"] == [{"name": "lookup", "description": "Look a word up.", "input_schema": tool.input_schema}]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["stop_sequences"]) == (321, 0.2, 0.9, ["STOP"])


def test_sampling_settings_left_unset_are_not_sent(server, provider):
    completed(provider, ask())

    body = server.requests[0].body
    assert not {"temperature", "top_p", "stop_sequences", "tools"} & body.keys()


def test_the_model_named_by_the_response_is_reported_in_usage(server, provider):
    events = completed(provider, ask(model="claude-haiku-4-5"))

    usage = [event for event in events if isinstance(event, UsageUpdated)]
    assert {event.model for event in usage} == {"claude-haiku-4-5"}


# --- failures ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected", "words_in_message"),
    [
        pytest.param(
            Reply.http_error(529, "overloaded_error"),
            ModelOverloadedError,
            ["overloaded", "529"],
            id="529-before-stream",
        ),
        pytest.param(
            Reply.http_error(500, "api_error"), ModelUnavailableError, ["server error", "500"], id="500-api-error"
        ),
        pytest.param(Reply.http_error(503, "api_error"), ModelUnavailableError, ["503"], id="503"),
        pytest.param(
            Reply.http_error(429, "rate_limit_error"), ModelRateLimitedError, ["rate limiting", "429"], id="429"
        ),
        pytest.param(
            Reply.http_error(401, "authentication_error", "invalid x-api-key"),
            ModelRequestRejectedError,
            ["rejected", "401", "invalid x-api-key"],
            id="401",
        ),
        pytest.param(
            Reply.http_error(400, "invalid_request_error", "max_tokens: too large"),
            ModelRequestRejectedError,
            ["400", "max_tokens: too large"],
            id="400",
        ),
        pytest.param(
            Reply.http_error(404, "not_found_error"), ModelRequestRejectedError, ["404"], id="404-unknown-model"
        ),
        pytest.param(Reply.http_error(413, "request_too_large"), ModelRequestRejectedError, ["413"], id="413"),
        pytest.param(
            Reply.error_event("overloaded_error", after_tokens=3),
            ModelOverloadedError,
            ["overloaded"],
            id="overloaded-event-mid-stream",
        ),
        pytest.param(
            Reply.error_event("api_error", after_tokens=3),
            ModelUnavailableError,
            ["mid-answer"],
            id="api-error-event-mid-stream",
        ),
        pytest.param(
            Reply.cut(after_tokens=3),
            ModelStreamInterruptedError,
            ["connection", "broke"],
            id="connection-cut-mid-stream",
        ),
        pytest.param(
            Reply.truncated(after_tokens=3),
            ModelStreamInterruptedError,
            ["message_stop"],
            id="ends-without-message-stop",
        ),
    ],
)
def test_each_failure_maps_to_its_model_error(server, provider, reply, expected, words_in_message):
    server.script(reply)

    run = stream(provider, ask())

    assert type(run.error) is expected, repr(run.error)
    assert all(word in run.error.message for word in words_in_message), run.error.message
    assert not any(isinstance(event, TurnEnded) for event in run.events)


def test_an_error_mid_stream_comes_after_the_text_already_streamed(server, provider):
    server.script(Reply.error_event("overloaded_error", after_tokens=2, text="Partial answer that never finishes."))

    run = stream(provider, ask())

    assert run.texts() == ["Partial", " answer"]
    assert isinstance(run.error, ModelOverloadedError)
    assert run.error.details["provider_error_type"] == "overloaded_error"


def test_unreachable_provider_is_a_stream_interruption(server):
    server.stop()  # nothing listens on the port any more
    provider = AnthropicProvider(api_key=API_KEY, base_url="http://127.0.0.1:9", max_retries=0)

    run = stream(provider, ask())

    assert isinstance(run.error, ModelStreamInterruptedError), repr(run.error)
    assert "connection" in run.error.message


def test_a_stalled_stream_fails_at_the_read_timeout_instead_of_hanging(server):
    provider = AnthropicProvider(api_key=API_KEY, base_url=server.base_url, max_retries=0, read_timeout=0.5)
    server.script(Reply.stall(60, after_tokens=1))

    run = stream(provider, ask())

    assert isinstance(run.error, ModelStreamInterruptedError), repr(run.error)
    assert "read timeout" in run.error.message
    assert len(run.texts()) == 1


def test_an_overloaded_response_is_retried_before_the_stream_starts(server):
    provider = AnthropicProvider(api_key=API_KEY, base_url=server.base_url, max_retries=2)
    server.script(Reply.http_error(529, headers={"retry-after-ms": "10"}), Reply.text("Second time lucky."))

    events = completed(provider, ask())

    assert "".join(event.text for event in events if isinstance(event, TextDelta)) == "Second time lucky."
    assert len(server.requests) == 2


def test_by_default_the_sdk_does_not_retry_so_an_overload_surfaces_at_once_for_the_core_to_retry(server):
    provider = AnthropicProvider(api_key=API_KEY, base_url=server.base_url)  # DEFAULT_MAX_RETRIES
    server.script(Reply.http_error(529, headers={"retry-after": "3"}), Reply.text("Too late."))

    run = stream(provider, ask())

    assert isinstance(run.error, ModelOverloadedError), repr(run.error)
    assert (run.error.retryable, run.error.retry_after) == (True, 3.0)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("reply", "expected", "retryable", "retry_after"),
    [
        pytest.param(Reply.http_error(429, headers={"retry-after-ms": "250"}), ModelRateLimitedError, True, 0.25,
                     id="429-retry-after-ms"),
        pytest.param(Reply.http_error(529, headers={"retry-after": "2"}), ModelOverloadedError, True, 2.0,
                     id="529-retry-after"),
        pytest.param(Reply.http_error(503, headers={"retry-after": "1"}), ModelUnavailableError, True, 1.0,
                     id="503-retry-after"),
        pytest.param(Reply.http_error(529), ModelOverloadedError, True, None, id="529-without-header"),
        pytest.param(Reply.cut(after_tokens=2), ModelStreamInterruptedError, True, None, id="cut-mid-stream"),
        pytest.param(Reply.http_error(400, headers={"retry-after": "5"}), ModelRequestRejectedError, False, None,
                     id="400-is-not-retryable"),
    ],
)
def test_errors_say_whether_to_retry_and_how_long_the_provider_asked_to_wait(
    server, provider, reply, expected, retryable, retry_after
):
    server.script(reply)

    run = stream(provider, ask())

    assert type(run.error) is expected, repr(run.error)
    assert (run.error.retryable, run.error.retry_after) == (retryable, retry_after)


def test_an_error_event_mid_stream_is_not_retried(server):
    provider = AnthropicProvider(api_key=API_KEY, base_url=server.base_url, max_retries=2)
    server.script(Reply.error_event("overloaded_error", after_tokens=1))

    run = stream(provider, ask())

    assert isinstance(run.error, ModelOverloadedError)
    assert len(server.requests) == 1, "a retry would repeat text the client has already been sent"


# --- cancellation -----------------------------------------------------------------------------
def test_cancelling_from_another_thread_ends_a_stalled_stream_quietly_and_closes_the_connection(server, provider):
    # The stall (60 s) and the read timeout (30 s) both dwarf the join deadline below: only the
    # cancellation can end this stream in time.
    server.script(Reply.stall(60, after_tokens=2))
    token = CancellationToken()
    run = BackgroundStream(provider, ask(), token).start()
    run.wait_for_text_deltas(2)
    time.sleep(0.2)  # let the reader block on the silent socket

    token.cancel()
    run.join(within=5)  # fails the test if the reader is still blocked: a hang, not a timing

    assert run.error is None, repr(run.error)
    assert run.texts() == ["Hello", " from"]
    assert not any(isinstance(event, TurnEnded) for event in run.events)
    assert server.requests[0].disconnected.wait(5), "the server never saw the connection close"


def test_cancelled_before_the_call_sends_nothing(server, provider):
    token = CancellationToken()
    token.cancel()

    run = stream(provider, ask(), token)

    assert (run.events, run.error, server.requests) == ([], None, [])


def test_cancelling_while_the_stream_is_flowing_stops_the_deltas(server, provider):
    server.script(Reply.text(" ".join(["word"] * 200), token_delay=0.01))
    token = CancellationToken()
    run = BackgroundStream(provider, ask(), token).start()
    run.wait_for_text_deltas(3)

    token.cancel()
    run.join()

    assert run.error is None, repr(run.error)
    assert 3 <= len(run.texts()) < 200
    assert not any(isinstance(event, TurnEnded) for event in run.events)


# --- the server's own non-streaming answer ----------------------------------------------------
def test_the_server_answers_a_non_streaming_request_with_one_message(server):
    import anthropic

    server.script(Reply.tool_use("calculator", {"expression": "1+1"}, text_before="Computing.", tool_use_id="toolu_ns"))
    client = anthropic.Anthropic(api_key=API_KEY, base_url=server.base_url, max_retries=0)

    message = client.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "1+1?"}])

    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {"expression": "1+1"}  # type: ignore[union-attr]
    assert not server.requests[0].body.get("stream")
