"""A cut-off answer continued through the real anthropic SDK, against devstack's Messages server:
by prefill where the model takes one, by asking in a user message where it refuses, and either
way the client sees one text, with nothing repeated and nothing missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.messages_server import PREFILL_REFUSAL, MessagesServer, Reply
from runwire.adapters.anthropic_provider import CONTINUE_PROMPT, AnthropicProvider
from runwire.core.cancellation import CancellationToken
from runwire.core.ports import ModelEvent, ModelRequest, TextDelta, TurnEnded
from runwire.core.transcript import Message, TextBlock
from runwire.errors import ModelRequestRejectedError, ModelStreamInterruptedError

pytestmark = pytest.mark.integration

API_KEY = "sk-ant-test-0123456789"
MODEL = "claude-sonnet-4-5"
REFUSING_MODEL = "claude-opus-4-6"
ANSWER = (
    "Plant what grows well where you live, start with a small bed, water deeply but rarely, "
    "and keep a notebook of what thrived so next year's garden is better than this one."
)
QUESTION = Message("user", (TextBlock("How do I start a garden?"),))


@pytest.fixture
def server() -> Iterator[MessagesServer]:
    with MessagesServer(default=Reply.text(ANSWER), refuse_prefill_models={REFUSING_MODEL}) as running:
        yield running


def provider_for(server: MessagesServer, **settings: object) -> AnthropicProvider:
    return AnthropicProvider(api_key=API_KEY, base_url=server.base_url, read_timeout=10, **settings)  # type: ignore[arg-type]


def call(
    provider: AnthropicProvider, messages: list[Message], model: str = MODEL
) -> tuple[list[ModelEvent], BaseException | None]:
    events: list[ModelEvent] = []
    try:
        for event in provider.stream(ModelRequest(model, "", messages), CancellationToken()):
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def text_of(events: list[ModelEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def continuation(partial: str) -> list[Message]:
    return [QUESTION, Message("assistant", (TextBlock(partial),))]


def assert_no_word_repeated_at_the_seam(partial: str, rest: str) -> None:
    words = (partial + rest).split()
    assert all(a != b for a, b in zip(words, words[1:], strict=False)), partial + rest


# --- prefill ------------------------------------------------------------------------------------
def test_an_answer_cut_mid_stream_is_continued_by_prefill_with_exactly_the_rest(server):
    provider = provider_for(server)
    server.script(Reply.cut(after_tokens=6, text=ANSWER))
    first, error = call(provider, [QUESTION])
    assert isinstance(error, ModelStreamInterruptedError)
    partial = text_of(first)

    rest, error = call(provider, continuation(partial))

    assert error is None
    assert partial + text_of(rest) == ANSWER
    assert isinstance(rest[-1], TurnEnded)
    assert server.requests[-1].body["messages"][-1] == {"role": "assistant", "content": partial}
    assert len(server.requests) == 2, "the prefill was taken at the first try"


@pytest.mark.parametrize("partial", ["Plant what grows well ", "Plant what grows well where you live, "])
def test_a_prefill_goes_without_trailing_whitespace_and_the_seam_has_no_double_space(server, partial):
    provider = provider_for(server)

    rest, error = call(provider, continuation(partial))

    assert error is None, repr(error)
    assert server.requests[-1].body["messages"][-1]["content"] == partial.rstrip()
    assert partial + text_of(rest) == ANSWER


# --- a model that refuses prefill ---------------------------------------------------------------
@pytest.mark.parametrize("repeated_words", [0, 1, 3, 6])
def test_a_model_refusing_prefill_is_asked_in_a_user_message_and_its_repeated_words_are_dropped(repeated_words):
    with MessagesServer(
        default=Reply.text(ANSWER), refuse_prefill_models={REFUSING_MODEL}, repeat_tail_words=repeated_words
    ) as server:
        provider = provider_for(server)
        partial = ANSWER[: ANSWER.index(" but rarely")]

        rest, error = call(provider, continuation(partial), REFUSING_MODEL)

        assert error is None, repr(error)
        assert partial + text_of(rest) == ANSWER
        assert_no_word_repeated_at_the_seam(partial, text_of(rest))
        said = rest[-1].content[0]["text"]  # type: ignore[union-attr]  # the model's own text, repeat and all
        assert said.startswith(" ".join(partial.split()[-repeated_words:]) if repeated_words else " but")
        refused, fallback = server.requests
        assert refused.body["messages"][-1]["role"] == "assistant"
        assert fallback.body["messages"][-2:] == [
            {"role": "assistant", "content": partial},
            {"role": "user", "content": CONTINUE_PROMPT},
        ]


def test_the_refusal_is_remembered_so_the_next_continuation_asks_in_a_user_message_at_once(server):
    provider = provider_for(server)
    call(provider, continuation("Plant what"), REFUSING_MODEL)
    assert REFUSING_MODEL in provider.prefill_refused_models
    before = len(server.requests)

    rest, error = call(provider, continuation("Plant what grows"), REFUSING_MODEL)

    assert error is None
    assert "Plant what grows" + text_of(rest) == ANSWER
    assert len(server.requests) == before + 1
    assert server.requests[-1].body["messages"][-1]["content"] == CONTINUE_PROMPT


def test_a_model_known_to_refuse_prefill_is_never_sent_one(server):
    provider = provider_for(server, prefill_refused_models=frozenset({REFUSING_MODEL}))
    partial = "Plant what grows well where you live, start with a sm"

    rest, error = call(provider, continuation(partial), REFUSING_MODEL)

    assert error is None
    assert partial + text_of(rest) == ANSWER
    (only,) = server.requests
    assert only.body["messages"][-1]["content"] == CONTINUE_PROMPT


def test_other_rejections_of_a_prefilled_request_are_not_retried(server):
    provider = provider_for(server)
    server.script(Reply.http_error(400, "invalid_request_error", "messages: too many messages"))

    _, error = call(provider, continuation("Plant what"))

    assert isinstance(error, ModelRequestRejectedError)
    assert not error.retryable
    assert len(server.requests) == 1
    assert provider.prefill_refused_models == frozenset()


def test_the_server_refuses_prefill_with_the_apis_error():
    import anthropic

    with MessagesServer(refuse_prefill_models={REFUSING_MODEL}) as server:
        client = anthropic.Anthropic(api_key=API_KEY, base_url=server.base_url, max_retries=0)
        with pytest.raises(anthropic.BadRequestError) as refused:
            client.messages.create(
                model=REFUSING_MODEL, max_tokens=10,
                messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}],
            )

    assert refused.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": PREFILL_REFUSAL},
        "request_id": refused.value.request_id,
    }
