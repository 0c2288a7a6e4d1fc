"""`AnthropicProvider`: the `ModelProvider` port over the Anthropic Messages API.

One `stream()` is one Messages call with `stream=True`. We read the raw SSE events
(`messages.create(stream=True)`) rather than the SDK's `messages.stream()` helper because we
assemble the turn ourselves (deltas, tool calls, usage, the content blocks to send back) and
need the HTTP response in hand to end it from another thread.

Cancellation. The worker cancels from its consumer thread while this one may be blocked reading
the socket. `Stream.close()` from another thread does not wake that read: on Linux, closing a
descriptor that another thread is polling leaves the poll blocked, so the read runs on to the
read timeout (measured against devstack/messages_server.py: 8 s with an 8 s read timeout). Shutting
the socket down (`SHUT_RDWR`) does wake it at once, over plain TCP and TLS alike, so the cancel
callback does that and the reading thread closes the response itself. A cancellation that
arrives before the response headers takes effect once they arrive (the SDK gives us no handle
on the request until then).

Continuing a cut-off answer (`runwire.core.continuation`). When the transcript ends with an
assistant message whose last block is text, the core is asking for the rest of that answer.
- Prefill, tried first: the partial text goes as the final assistant message, trailing whitespace
  stripped (the API refuses a final assistant message ending in whitespace; dropped entirely when
  nothing else is left), and the model carries on from its last character.
- Fallback, for models that refuse prefill (the 4.6 models answer 400 invalid_request_error "This
  model does not support assistant message prefill. The conversation must end with a user
  message."): the partial assistant message stays (stripped the same way), followed by a user
  message, `CONTINUE_PROMPT`, asking for the rest. Such a model often repeats the last few words
  first, so its text goes through `ContinuationJoiner`'s overlap removal.
A model that refuses is remembered for the provider's life (seeded by `prefill_refused_models`)
and the same call is made again at once in the fallback shape. In both shapes the deltas go
through `ContinuationJoiner`, so the client sees the partial text and the rest as one text.

How failures surface in anthropic 2.x, and what they become here:
- before the stream: `APIStatusError` subclasses chosen by status (`OverloadedError` for 529,
  `RateLimitError`, `InternalServerError`, …), `APITimeoutError`, `APIConnectionError`. The SDK's
  own retries are off by default (`DEFAULT_MAX_RETRIES`): the core retries retryable
  `ModelError`s itself, with backoff, within the run's deadline, honouring `retry_after` (from
  the response's `retry-after-ms` / `retry-after` header);
- an `event: error` inside the 200 stream: a plain `APIStatusError` whose `status_code` is the
  stream's 200 and whose `body` is the event's JSON, so we map it by `body.error.type`;
- a connection lost or a read timing out mid-stream: the HTTP library's own exceptions, unwrapped
  (`httpx2.RemoteProtocolError`, `ReadError`, `ReadTimeout` in 2.11, which runs on httpx2);
- a stream that ends without `message_stop`: no exception at all, so we check for it.
Errors are told apart by class, status and the body's `error.type`, never by message text, with
one exception: the prefill refusal, which has no type of its own (see `_refuses_prefill`).
"""

from __future__ import annotations

import email.utils
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.continuation import ContinuationJoiner, partial_reply, prefill_text
from ..core.ports import Cancellation, ModelEvent, ModelRequest, TextDelta, ToolCallRequested, TurnEnded, UsageUpdated
from ..core.transcript import Block, DocumentBlock, ImageBlock, Message, TextBlock, ToolCallBlock
from ..errors import (
    ConfigurationError,
    ModelError,
    ModelOverloadedError,
    ModelRateLimitedError,
    ModelRequestRejectedError,
    ModelStreamInterruptedError,
    ModelUnavailableError,
)

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import RawMessageStreamEvent

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_READ_TIMEOUT_SECONDS = 60.0
"""Per read: the longest the stream may go silent. The API pings while it thinks, so a healthy
stream is never silent this long; a stalled one fails instead of hanging the run."""
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_RETRIES = 0
"""The SDK does not retry on its own: the core retries retryable model errors itself, with
backoff, inside the run's deadline (and as continuations once text has streamed)."""
CONTINUE_PROMPT = (
    "Your previous reply was cut off. Continue it from exactly where it stopped, "
    "without repeating anything already written:"
)
"""The user message that asks a model refusing prefill for the rest of its cut-off answer."""


def build_client(
    *,
    api_key: str | None,
    base_url: str | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> anthropic.Anthropic:
    """The SDK client, built once per container. Everything is passed explicitly, so the SDK's
    own environment lookups (ANTHROPIC_BASE_URL, profiles on disk) never decide for us."""
    import anthropic

    if not api_key:
        raise ConfigurationError(
            "MODEL_PROVIDER=anthropic needs an API key (ANTHROPIC_API_KEY or ANTHROPIC_API_KEY_SECRET_ARN)."
        )
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url or DEFAULT_BASE_URL,
        # anthropic 2.x runs on httpx2 and rejects an `httpx.Timeout`; `anthropic.Timeout` is httpx2's.
        timeout=anthropic.Timeout(read_timeout, connect=connect_timeout),
        max_retries=max_retries,
    )


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        client: anthropic.Anthropic | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        prefill_refused_models: frozenset[str] = frozenset(),
    ) -> None:
        """Pass a built `client`, or the settings to build one (ignored when `client` is given).
        `prefill_refused_models`: models known to refuse prefill, continued in the fallback shape
        from the start (others that refuse are learned on their first refusal).

        Importing the SDK takes about a second, so a client built from settings is built on a
        background thread started here: the handler module imports fast (cold start), and the
        import overlaps with the worker's first claim instead of adding to it."""
        self._client = client
        self._client_lock = threading.Lock()
        self._client_settings = {
            "api_key": api_key,
            "base_url": base_url,
            "read_timeout": read_timeout,
            "connect_timeout": connect_timeout,
            "max_retries": max_retries,
        }
        self._prefill_refused = frozenset(prefill_refused_models)
        """Replaced, never mutated: worker threads read it while another may learn a refusal."""
        if client is None:
            threading.Thread(target=self._sdk_client, name="anthropic-warmup", daemon=True).start()

    @property
    def prefill_refused_models(self) -> frozenset[str]:
        """The models continued in the fallback shape: given, or learned from their refusal."""
        return self._prefill_refused

    def _sdk_client(self) -> anthropic.Anthropic:
        with self._client_lock:
            if self._client is None:
                self._client = build_client(**self._client_settings)  # type: ignore[arg-type]
            return self._client

    def stream(self, request: ModelRequest, cancellation: Cancellation) -> Iterator[ModelEvent]:
        if cancellation.cancelled:
            return
        partial = partial_reply(request.messages)
        try:
            sdk_stream, prefilled = self._open(request, prefill=request.model not in self._prefill_refused)
        except Exception as exc:
            if cancellation.cancelled:
                return
            error = model_error_for(exc)
            if error is None:
                raise
            raise error from exc

        cancellation.on_cancel(lambda: _interrupt(sdk_stream))
        turn = _TurnAssembler(request.model)
        joiner = ContinuationJoiner(partial or "", drop_overlap=partial is not None and not prefilled)
        try:
            with sdk_stream:
                for event in sdk_stream:
                    if cancellation.cancelled:
                        return
                    yield from _joined(turn.feed(event), joiner)
        except Exception as exc:
            if cancellation.cancelled:
                return  # the read we broke on purpose fails; that is the cancellation, not an error
            error = model_error_for(exc)
            if error is None:
                raise
            raise error from exc
        if cancellation.cancelled:
            return
        ended = turn.end()
        yield from _joined([], joiner, finished=True)
        yield ended

    def _open(
        self, request: ModelRequest, *, prefill: bool
    ) -> tuple[anthropic.Stream[RawMessageStreamEvent], bool]:
        """The SDK stream, and whether a continuation went as a prefill. A model that refuses
        prefill is remembered, and asked again at once in the fallback shape."""
        client = self._sdk_client()
        try:
            return client.messages.create(**request_arguments(request, prefill=prefill), stream=True), prefill
        except Exception as exc:
            if not (prefill and partial_reply(request.messages) is not None and _refuses_prefill(exc)):
                raise
        self._prefill_refused = self._prefill_refused | {request.model}
        return client.messages.create(**request_arguments(request, prefill=False), stream=True), False


def _joined(events: Iterable[ModelEvent], joiner: ContinuationJoiner, *, finished: bool = False) -> Iterator[ModelEvent]:
    """`events` with their text passed through `joiner`; what it holds back comes out before a
    tool call, and at the end (`finished`)."""
    for event in events:
        if isinstance(event, TextDelta):
            text = joiner.feed(event.text)
            if text:
                yield TextDelta(text)
            continue
        if isinstance(event, ToolCallRequested):
            yield from _joined([], joiner, finished=True)
        yield event
    if finished and (held := joiner.finish()):
        yield TextDelta(held)


def request_arguments(request: ModelRequest, *, prefill: bool = True) -> dict[str, Any]:
    """`messages.create` keyword arguments; optional settings only when set. `prefill`: how a
    continuation request asks for the rest (see the module docstring); no effect on others.

    anthropic 1.0 removed the `temperature`, `top_p` and `top_k` keyword arguments from
    `Messages.create()`; the API still takes them on models that support sampling settings, so
    they travel in `extra_body` (simonw/llm-anthropic#82). Newer models refuse `temperature` and
    `top_p` together with a 400, which surfaces as `ModelRequestRejectedError` with the API's reason.
    """
    arguments: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": anthropic_messages(request.messages, prefill=prefill),
    }
    if request.system:
        arguments["system"] = request.system
    if request.tools:
        arguments["tools"] = [
            {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}
            for tool in request.tools
        ]
    if request.stop_sequences:
        arguments["stop_sequences"] = request.stop_sequences
    sampling = {"temperature": request.temperature, "top_p": request.top_p}
    if any(value is not None for value in sampling.values()):
        arguments["extra_body"] = {name: value for name, value in sampling.items() if value is not None}
    return arguments


def anthropic_messages(messages: list[Message], *, prefill: bool = True) -> list[dict[str, Any]]:
    """The neutral transcript in the Messages API's shape. A continuation request's partial text
    goes stripped of trailing whitespace; with `prefill` False, `CONTINUE_PROMPT` follows it."""
    sent = [{"role": message.role, "content": _content(message)} for message in _partial_stripped(messages)]
    partial = partial_reply(messages)
    if not prefill and partial is not None and prefill_text(partial):
        sent.append({"role": "user", "content": CONTINUE_PROMPT})
    return sent


def _partial_stripped(messages: list[Message]) -> list[Message]:
    """The transcript with a cut-off answer's trailing whitespace stripped (its block dropped if
    nothing is left, and its message too if that was all it held)."""
    partial = partial_reply(messages)
    if partial is None:
        return messages
    stem = prefill_text(partial)
    blocks = messages[-1].blocks[:-1] + ((TextBlock(stem),) if stem else ())
    return messages[:-1] + ([Message("assistant", blocks)] if blocks else [])


def _content(message: Message) -> str | list[dict[str, Any]]:
    if len(message.blocks) == 1 and isinstance(message.blocks[0], TextBlock):
        return message.blocks[0].text
    # The API refuses text blocks of only whitespace (e.g. the "\n\n" a model writes before a tool call).
    blocks = [b for b in message.blocks if not (isinstance(b, TextBlock) and not b.text.strip())]
    return [_block(block) for block in blocks or message.blocks]


def _block(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageBlock):
        if block.data is not None:
            return {"type": "image", "source": {"type": "base64", "media_type": block.mime_type, "data": block.data}}
        return {"type": "image", "source": {"type": "url", "url": block.url}}
    if isinstance(block, DocumentBlock):
        return {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": block.text},
                "title": block.title}
    if isinstance(block, ToolCallBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "tool_result", "tool_use_id": block.tool_call_id, "content": block.text_for_model(),
            "is_error": block.is_error}


def _interrupt(sdk_stream: anthropic.Stream[RawMessageStreamEvent]) -> None:
    """Wake the thread reading `sdk_stream` (see the module docstring for why not `close()`)."""
    if sdk_stream.response.is_closed:
        # Finished already: its keep-alive connection may be serving another request by now.
        return
    network_stream = sdk_stream.response.extensions.get("network_stream")
    sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    if isinstance(sock, socket.socket):
        # The base-class method: `ssl.SSLSocket.shutdown` would also drop its SSL object under the
        # reading thread's feet; we only want the descriptor shut so the pending read returns.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    else:
        sdk_stream.close()


# --- assembling a turn from raw events ----------------------------------------------------------
@dataclass
class _Block:
    type: str
    pieces: list[str] = field(default_factory=list)
    """Text deltas, or the tool input's partial JSON."""
    id: str = ""
    name: str = ""
    input: dict[str, Any] | None = None
    """The parsed tool input, once the block is complete and valid."""


class _TurnAssembler:
    def __init__(self, requested_model: str) -> None:
        self._model = requested_model
        self._blocks: dict[int, _Block] = {}
        self._input_tokens = 0
        self._output_tokens = 0
        self._stop_reason: str | None = None
        self._stopped = False

    def feed(self, event: RawMessageStreamEvent) -> Iterator[ModelEvent]:
        if event.type == "message_start":
            message = event.message
            self._model = message.model or self._model
            usage = message.usage
            self._input_tokens = _total_input(
                usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens
            )
            self._output_tokens = usage.output_tokens or 0
            yield UsageUpdated(self._model, self._input_tokens, self._output_tokens)
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "text":
                self._blocks[event.index] = _Block("text", [block.text] if block.text else [])
                if block.text:
                    yield TextDelta(block.text)
            elif block.type == "tool_use":
                self._blocks[event.index] = _Block("tool_use", id=block.id, name=block.name)
            # Other blocks (thinking, server tools) are not requested by runwire; they are skipped.
        elif event.type == "content_block_delta":
            open_block = self._blocks.get(event.index)
            delta = event.delta
            if open_block is None:
                return
            if delta.type == "text_delta" and delta.text:
                open_block.pieces.append(delta.text)
                yield TextDelta(delta.text)
            elif delta.type == "input_json_delta":
                open_block.pieces.append(delta.partial_json)
        elif event.type == "content_block_stop":
            open_block = self._blocks.get(event.index)
            if open_block is not None and open_block.type == "tool_use":
                open_block.input = _parse_tool_input("".join(open_block.pieces))
                if open_block.input is not None:
                    yield ToolCallRequested(open_block.id, open_block.name, open_block.input)
        elif event.type == "message_delta":
            self._stop_reason = event.delta.stop_reason or self._stop_reason
            delta_usage = event.usage
            if delta_usage.input_tokens is not None:  # cumulative when present (the API may revise it)
                self._input_tokens = _total_input(
                    delta_usage.input_tokens,
                    delta_usage.cache_creation_input_tokens,
                    delta_usage.cache_read_input_tokens,
                )
            self._output_tokens = delta_usage.output_tokens
            yield UsageUpdated(self._model, self._input_tokens, self._output_tokens)
        elif event.type == "message_stop":
            self._stopped = True

    def end(self) -> TurnEnded:
        if not self._stopped:
            raise ModelStreamInterruptedError(
                "The model's stream ended before the answer was complete (no message_stop); try again."
            )
        stop_reason = self._stop_reason or "end_turn"
        content: list[dict[str, Any]] = []
        for _, block in sorted(self._blocks.items()):
            if block.type == "text":
                text = "".join(block.pieces)
                if text:  # the API refuses empty text blocks when they are sent back
                    content.append({"type": "text", "text": text})
            elif block.input is not None:
                content.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
            elif stop_reason != "max_tokens":
                # Cut short by max_tokens, a tool call's JSON is legitimately unfinished (and dropped);
                # otherwise the stream is damaged.
                raise ModelStreamInterruptedError(
                    f"The model's call to the tool {block.name!r} arrived with input that is not a JSON object."
                )
        return TurnEnded(stop_reason, content)


def _total_input(input_tokens: int | None, cache_creation: int | None, cache_read: int | None) -> int:
    """All input tokens: the API counts cache writes and reads apart from `input_tokens`."""
    return (input_tokens or 0) + (cache_creation or 0) + (cache_read or 0)


def _parse_tool_input(raw: str) -> dict[str, Any] | None:
    if not raw.strip():
        return {}  # a tool called without arguments streams no (or empty) input_json_delta
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


# --- error mapping ------------------------------------------------------------------------------
def model_error_for(exc: BaseException) -> ModelError | None:
    """The `ModelError` for a failure we recognise; None for anything else (a bug: let it through)."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        error_type = _body_error(exc.body, "type")
        details = {"status": exc.status_code, "provider_error_type": error_type, "request_id": exc.request_id}
        if exc.status_code < 400:
            # An `event: error` inside a 200 stream: the status says nothing, the event's type does.
            details["request_id"] = details["request_id"] or _body_field(exc.body, "request_id")
            return _error_for_event(error_type, _body_error(exc.body, "message"), details)
        error = _error_for_status(exc.status_code, error_type, _body_error(exc.body, "message"), details)
        if error.retryable:
            error.retry_after = retry_after_seconds(exc.response.headers)
        return error
    if isinstance(exc, anthropic.APITimeoutError):
        return ModelStreamInterruptedError("The model provider did not answer in time (timed out); try again.")
    if isinstance(exc, anthropic.APIConnectionError):
        return ModelStreamInterruptedError("Could not reach the model provider (connection failed); try again.")
    if isinstance(exc, anthropic.APIError):
        return ModelStreamInterruptedError("The model provider sent a response runwire could not read; try again.")
    timeouts, transport_errors = _transport_error_types()
    if isinstance(exc, timeouts):
        return ModelStreamInterruptedError(
            "The model's stream went silent for longer than the read timeout and was abandoned; try again."
        )
    if isinstance(exc, transport_errors):
        return ModelStreamInterruptedError("The connection to the model provider broke mid-answer; try again.")
    if isinstance(exc, json.JSONDecodeError):
        return ModelStreamInterruptedError("The model's stream carried an event that is not valid JSON; try again.")
    return None


def _error_for_status(
    status: int, error_type: str | None, api_message: str | None, details: dict[str, Any]
) -> ModelError:
    if status == 529 or error_type == "overloaded_error":
        return ModelOverloadedError(
            f"The model provider is overloaded (HTTP {status}); try again shortly.", details=details
        )
    if status == 429:
        return ModelRateLimitedError(
            "The model provider is rate limiting this account (HTTP 429); try again shortly.", details=details
        )
    if status >= 500 or status == 408:
        return ModelUnavailableError(
            f"The model provider failed with a server error (HTTP {status}); try again shortly.", details=details
        )
    reason = f": {api_message}" if api_message else "."
    return ModelRequestRejectedError(
        f"The model provider rejected the request (HTTP {status} {error_type or 'error'}){reason}", details=details
    )


def _refuses_prefill(exc: BaseException) -> bool:
    """Is this the API refusing a prefill (a final assistant message) for the model asked?

    The one place message text is consulted: the refusal is a plain 400 invalid_request_error,
    the type every malformed request gets, and only its message tells it apart. It is checked
    only for a request that did carry a prefill. "pre-fill" is the spelling of the older
    refusal (prefill together with tools)."""
    import anthropic

    if not isinstance(exc, anthropic.APIStatusError) or exc.status_code != 400:
        return False
    message = _body_error(exc.body, "message") or ""
    return _body_error(exc.body, "type") == "invalid_request_error" and "prefill" in message.lower().replace("-", "")


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long the provider asked us to wait: `retry-after-ms` (the API's own, more precise),
    else `retry-after` in seconds or as an HTTP date (RFC 9110 §10.2.3); None if neither says."""
    milliseconds = _finite(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(0.0, milliseconds / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _finite(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# The error types the API pairs with a 4xx status (https://docs.anthropic.com/en/api/errors).
_REJECTION_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
    }
)


def _error_for_event(error_type: str | None, api_message: str | None, details: dict[str, Any]) -> ModelError:
    if error_type == "overloaded_error":
        return ModelOverloadedError(
            "The model provider became overloaded mid-answer; try again shortly.", details=details
        )
    if error_type == "rate_limit_error":
        return ModelRateLimitedError(
            "The model provider rate limited the request mid-answer; try again shortly.", details=details
        )
    if error_type in ("api_error", "timeout_error"):
        return ModelUnavailableError(
            f"The model provider failed mid-answer ({error_type}); try again shortly.", details=details
        )
    if error_type in _REJECTION_TYPES:
        reason = f": {api_message}" if api_message else "."
        return ModelRequestRejectedError(
            f"The model provider rejected the request mid-answer ({error_type}){reason}", details=details
        )
    return ModelStreamInterruptedError(
        f"The model's stream broke off with an error event ({error_type or 'no type given'}); try again.",
        details=details,
    )


def _body_field(body: object, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None


def _body_error(body: object, name: str) -> Any:
    error = _body_field(body, "error")
    value = error.get(name) if isinstance(error, dict) else None
    return value if isinstance(value, str) else None


def _transport_error_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout errors, all transport errors) of the HTTP libraries loaded.

    The SDK lets them through unwrapped once the stream has started. anthropic 2.x runs on
    httpx2, older releases on httpx; a library that is not loaded cannot have raised, so we look
    in `sys.modules` rather than importing either.
    """
    libraries = [sys.modules[name] for name in ("httpx2", "httpx") if name in sys.modules]
    return (
        tuple(library.TimeoutException for library in libraries),
        tuple(library.TransportError for library in libraries),
    )
