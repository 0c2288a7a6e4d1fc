"""A local stand-in for the Anthropic Messages API that speaks its streaming protocol.

`POST /v1/messages` with `"stream": true` answers `text/event-stream`, one SSE event per frame:

    message_start → ping → (content_block_start → content_block_delta… → content_block_stop)…
                  → message_delta (stop_reason, usage.output_tokens) → message_stop

with `text_delta` deltas for text blocks and `input_json_delta` pieces for tool_use blocks, the
shapes of https://docs.anthropic.com/en/api/messages-streaming (cross-checked against the
anthropic SDK's `types/raw_*_event.py`). `"stream": false` answers one Message JSON object.

Each request consumes the next scripted `Reply` (then falls back to the default reply), so tests
and benchmarks can script text, tool calls, HTTP errors before the stream, `event: error` mid-stream,
a connection cut mid-stream and a stall. Every request is recorded (path, headers, JSON body).

Continuing a cut-off answer, as a real model does (see `continued_reply`):
- a prefill (the last message is the assistant's) continues the reply's text from where the
  prefill ends, when the reply's text starts with it; a prefill ending in whitespace gets the
  API's 400, and so does any prefill for a model in `refuse_prefill_models`, with the refusal the
  4.6 models answer ("This model does not support assistant message prefill. …");
- a user message asking to continue after a partial assistant message (the fallback for those
  models) continues from the end of that partial text, first repeating its last
  `repeat_tail_words` words, as real models often do.
A refusal is decided before a scripted reply is consumed: the reply answers the retry.

It runs on the standard library (`ThreadingHTTPServer`) rather than uvicorn so that it owns the
bytes on the wire: chunked framing is written by hand, which is what lets it cut a response
mid-body (no terminating chunk: the client sees an incomplete body, as with a dropped connection)
or stall after the headers.

Deliberate divergences from the real API:
- token counts are counts of deltas (output) and a length/4 estimate (input), not a tokenizer's;
- no authentication: the key (`x-api-key`, or `Authorization: Bearer` as anthropic 2.x sends it)
  is recorded, never checked (script a 401 to test rejection);
- the request body is not validated beyond being a JSON object (and a prefill's trailing whitespace);
- a continuation request is recognised by its words ("cut off" and "continue"): a real model
  understands any wording.

Run `python -m devstack.messages_server --port 8765` for manual runs with
`MODEL_PROVIDER=anthropic ANTHROPIC_BASE_URL=http://127.0.0.1:8765`.
"""

from __future__ import annotations

import argparse
import enum
import json
import math
import re
import select
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NoReturn, Self

DEFAULT_TEXT = "Hello from the local Messages server. This is a scripted reply, streamed token by token."
_TOKEN = re.compile(r"\s*\S+")
_WORD = re.compile(r"\S+")
_JSON_PIECE_CHARS = 12
DEFAULT_REPEAT_TAIL_WORDS = 3
PREFILL_REFUSAL = (
    "This model does not support assistant message prefill. The conversation must end with a user message."
)
TRAILING_WHITESPACE_REFUSAL = "messages: final assistant content cannot end with trailing whitespace"
_CONTINUE_REQUEST = (re.compile(r"\bcut off\b", re.IGNORECASE), re.compile(r"\bcontinue\b", re.IGNORECASE))

# The status the real API pairs with each error type (https://docs.anthropic.com/en/api/errors).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
_ERROR_TYPE_FOR_STATUS = {status: error_type for error_type, status in ERROR_STATUS.items()}


# --- scripting ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str | None = None
    """None: a fresh `toolu_…` id per response."""


class Interruption(enum.StrEnum):
    ERROR_EVENT = "error_event"
    """Send `event: error` with `error_type`, then end the response (no message_stop)."""
    CUT = "cut"
    """Drop the connection mid-body: no terminating chunk, no message_stop."""
    STALL = "stall"
    """Send nothing for `stall_seconds` (or until the client goes away), then carry on."""
    TRUNCATE = "truncate"
    """End the body properly but early: no message_stop (as a misbehaving proxy might)."""


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request. Build one with the class methods."""

    content: tuple[Text | ToolUse, ...] = (Text(DEFAULT_TEXT),)
    stop_reason: str | None = None
    """None: "tool_use" when the content has a tool_use block, else "end_turn"."""
    token_delay: float = 0.0
    """Seconds between content deltas."""
    status: int = 200
    """Not 200: answer an Anthropic error JSON with this status before any streaming."""
    error_type: str | None = None
    error_message: str | None = None
    interruption: Interruption | None = None
    after_tokens: int = 0
    """The interruption comes after this many content deltas (0: right after the headers)."""
    stall_seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    """Extra response headers (e.g. ("retry-after-ms", "10") on an error)."""

    @classmethod
    def text(cls, text: str = DEFAULT_TEXT, *, token_delay: float = 0.0, stop_reason: str = "end_turn") -> Reply:
        return cls(content=(Text(text),), token_delay=token_delay, stop_reason=stop_reason)

    @classmethod
    def tool_use(
        cls,
        name: str,
        tool_input: dict[str, Any],
        *,
        text_before: str | None = None,
        text_after: str | None = None,
        tool_use_id: str | None = None,
        token_delay: float = 0.0,
    ) -> Reply:
        """A tool call, optionally with text around it; stop_reason "tool_use"."""
        blocks: list[Text | ToolUse] = []
        if text_before:
            blocks.append(Text(text_before))
        blocks.append(ToolUse(name, tool_input, tool_use_id))
        if text_after:
            blocks.append(Text(text_after))
        return cls(content=tuple(blocks), token_delay=token_delay)

    @classmethod
    def http_error(
        cls,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """An Anthropic error JSON with `status`, before any streaming (e.g. 529 overloaded_error)."""
        error_type = error_type or _ERROR_TYPE_FOR_STATUS.get(status, "api_error")
        return cls(
            status=status,
            error_type=error_type,
            error_message=message or _default_error_message(error_type),
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def error_event(
        cls,
        error_type: str = "overloaded_error",
        *,
        after_tokens: int = 0,
        text: str = DEFAULT_TEXT,
        message: str | None = None,
    ) -> Reply:
        """A 200 stream that sends `event: error` after `after_tokens` text deltas."""
        return cls(
            content=(Text(text),),
            interruption=Interruption.ERROR_EVENT,
            after_tokens=after_tokens,
            error_type=error_type,
            error_message=message or _default_error_message(error_type),
        )

    @classmethod
    def cut(cls, *, after_tokens: int = 0, text: str = DEFAULT_TEXT) -> Reply:
        """A 200 stream whose connection drops after `after_tokens` text deltas."""
        return cls(content=(Text(text),), interruption=Interruption.CUT, after_tokens=after_tokens)

    @classmethod
    def truncated(cls, *, after_tokens: int = 0, text: str = DEFAULT_TEXT) -> Reply:
        """A 200 stream whose body ends cleanly after `after_tokens` text deltas, without message_stop."""
        return cls(content=(Text(text),), interruption=Interruption.TRUNCATE, after_tokens=after_tokens)

    @classmethod
    def stall(cls, seconds: float, *, after_tokens: int = 0, text: str = DEFAULT_TEXT) -> Reply:
        """A 200 stream that goes silent for `seconds` after `after_tokens` text deltas, then carries on."""
        return cls(
            content=(Text(text),), interruption=Interruption.STALL, after_tokens=after_tokens, stall_seconds=seconds
        )


def _default_error_message(error_type: str) -> str:
    return {
        "overloaded_error": "Overloaded",
        "api_error": "Internal server error",
        "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
        "authentication_error": "invalid x-api-key",
        "permission_error": "Your API key does not have permission to use the specified resource.",
        "not_found_error": "The requested resource could not be found.",
        "invalid_request_error": "Invalid request",
    }.get(error_type, error_type)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: Any
    disconnected: threading.Event = field(default_factory=threading.Event)
    """Set when the client went away before the response was complete."""

    @property
    def api_key(self) -> str | None:
        """The key as sent: `x-api-key`, or `Authorization: Bearer` (how anthropic 2.x sends it)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, credentials = self.headers.get("authorization", "").partition(" ")
        return credentials if scheme.lower() == "bearer" and credentials else None


# --- the wire format (pure) ---------------------------------------------------------------------
def encode_event(name: str, data: dict[str, Any]) -> bytes:
    """One SSE frame as the API writes it: `event:` line, one `data:` line of JSON, blank line."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def estimate_input_tokens(body: dict[str, Any]) -> int:
    text = json.dumps(body.get("system", "")) + json.dumps(body.get("messages", [])) + json.dumps(body.get("tools", []))
    return max(1, math.ceil(len(text) / 4))


def _pieces(block: Text | ToolUse) -> list[str]:
    if isinstance(block, Text):
        return _TOKEN.findall(block.text) or [block.text]
    raw = json.dumps(block.input)
    return [raw[i : i + _JSON_PIECE_CHARS] for i in range(0, len(raw), _JSON_PIECE_CHARS)]


@dataclass(frozen=True)
class Frame:
    data: bytes
    is_token: bool = False


def message_frames(reply: Reply, *, message_id: str, model: str, input_tokens: int) -> Iterator[Frame]:
    """The frames of a complete streamed message (the interruption is the transport's job)."""
    yield Frame(
        encode_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        )
    )
    yield Frame(encode_event("ping", {"type": "ping"}))
    output_tokens = 0
    for index, block in enumerate(reply.content):
        if isinstance(block, Text):
            start: dict[str, Any] = {"type": "text", "text": ""}
        else:
            start = {"type": "tool_use", "id": block.id or _tool_use_id(), "name": block.name, "input": {}}
        yield Frame(
            encode_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        )
        for piece in _pieces(block):
            delta = (
                {"type": "text_delta", "text": piece}
                if isinstance(block, Text)
                else {"type": "input_json_delta", "partial_json": piece}
            )
            output_tokens += 1
            yield Frame(
                encode_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
                True,
            )
        yield Frame(encode_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    yield Frame(
        encode_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {"output_tokens": max(1, output_tokens)},
            },
        )
    )
    yield Frame(encode_event("message_stop", {"type": "message_stop"}))


def message_json(reply: Reply, *, message_id: str, model: str, input_tokens: int) -> dict[str, Any]:
    """The non-streaming answer: one Message object."""
    content: list[dict[str, Any]] = []
    output_tokens = 0
    for block in reply.content:
        output_tokens += len(_pieces(block))
        if isinstance(block, Text):
            content.append({"type": "text", "text": block.text})
        else:
            content.append(
                {"type": "tool_use", "id": block.id or _tool_use_id(), "name": block.name, "input": block.input}
            )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": max(1, output_tokens)},
    }


def _stop_reason(reply: Reply) -> str:
    if reply.stop_reason:
        return reply.stop_reason
    return "tool_use" if any(isinstance(block, ToolUse) for block in reply.content) else "end_turn"


def _tool_use_id() -> str:
    return "toolu_" + uuid.uuid4().hex[:24]


# --- continuing a cut-off answer (pure) -----------------------------------------------------------
def _text_of(content: Any) -> str | None:
    """The text an assistant message ends with (a string, or its last block's text), else None."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and isinstance(content[-1], dict) and content[-1].get("type") == "text":
        return str(content[-1].get("text", ""))
    return None


def prefill_of(body: dict[str, Any]) -> str | None:
    """The prefill text when the request's last message is the assistant's, else None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    return _text_of(last.get("content")) if last.get("role") == "assistant" else None


def _continued_partial(body: dict[str, Any]) -> str | None:
    """The partial answer a user message asks to continue (the prefill fallback), else None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or len(messages) < 2 or not all(isinstance(m, dict) for m in messages[-2:]):
        return None
    partial, ask = messages[-2], messages[-1]
    asked = ask.get("content") if isinstance(ask.get("content"), str) else _text_of(ask.get("content"))
    if partial.get("role") != "assistant" or ask.get("role") != "user" or not asked:
        return None
    if not all(pattern.search(asked) for pattern in _CONTINUE_REQUEST):
        return None
    return _text_of(partial.get("content"))


def continued_reply(reply: Reply, body: dict[str, Any], *, repeat_tail_words: int = DEFAULT_REPEAT_TAIL_WORDS) -> Reply:
    """`reply` as the continuation of a cut-off answer, when `body` asks for one and the reply's
    first text starts with the text shown so far; otherwise `reply` unchanged.

    After a prefill the text carries on from the prefill's last character; after a request to
    continue it first repeats the partial text's last `repeat_tail_words` words."""
    prefill = prefill_of(body)
    partial = prefill if prefill is not None else _continued_partial(body)
    if partial is None or not reply.content or not isinstance(reply.content[0], Text):
        return reply
    shown = partial.rstrip()
    text = reply.content[0].text
    if not shown or not text.startswith(shown):
        return reply
    start = len(shown)
    if prefill is None and repeat_tail_words > 0:
        word_starts = [word.start() for word in _WORD.finditer(shown)]
        start = word_starts[-min(repeat_tail_words, len(word_starts))]
    return replace(reply, content=(Text(text[start:]), *reply.content[1:]))


def prefill_refusal(body: dict[str, Any], refuse_prefill_models: frozenset[str]) -> str | None:
    """The 400 invalid_request_error message the API answers this request's prefill with, if any."""
    prefill = prefill_of(body)
    if prefill is None:
        return None
    if str(body.get("model")) in refuse_prefill_models:
        return PREFILL_REFUSAL
    return TRAILING_WHITESPACE_REFUSAL if prefill != prefill.rstrip() else None


# --- transport ----------------------------------------------------------------------------------
class _ClientGone(Exception):
    """The client hung up before the response was complete."""


class _ConnectionCut(Exception):
    """The script (or `stop()`) dropped the connection on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as the SDK's pooled client expects
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks read `MessagesServer.requests`, not the access log."""

    def do_POST(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        record = RecordedRequest("POST", path, {k.lower(): v for k, v in self.headers.items()}, body)
        owner._record(record)
        request_id = "req_" + uuid.uuid4().hex[:24]
        if path != "/v1/messages":
            self._send_json(404, error_body("not_found_error", f"Not found: {path}", request_id), request_id)
            return
        if not isinstance(body, dict):
            self._send_json(
                400, error_body("invalid_request_error", "The body must be a JSON object.", request_id), request_id
            )
            return

        refusal = prefill_refusal(body, owner.refuse_prefill_models)
        if refusal is not None:
            self._send_json(400, error_body("invalid_request_error", refusal, request_id), request_id)
            return
        reply = continued_reply(owner._next_reply(), body, repeat_tail_words=owner.repeat_tail_words)
        if reply.status != 200:
            error_type = reply.error_type or _ERROR_TYPE_FOR_STATUS.get(reply.status, "api_error")
            message = reply.error_message or _default_error_message(error_type)
            self._send_json(reply.status, error_body(error_type, message, request_id), request_id, reply.headers)
            return
        model = str(body.get("model") or "claude-devstack")
        message_id = "msg_" + uuid.uuid4().hex[:24]
        input_tokens = estimate_input_tokens(body)
        try:
            if body.get("stream"):
                self._stream(
                    reply, record, request_id=request_id, message_id=message_id, model=model, input_tokens=input_tokens
                )
            else:
                self._answer(
                    reply, record, request_id=request_id, message_id=message_id, model=model, input_tokens=input_tokens
                )
        except _ConnectionCut:
            self.close_connection = True
        except (_ClientGone, OSError):
            record.disconnected.set()
            self.close_connection = True

    # -------------------------------------------------------------------------------------------
    def _answer(
        self, reply: Reply, record: RecordedRequest, *, request_id: str, message_id: str, model: str, input_tokens: int
    ) -> None:
        if reply.interruption is Interruption.STALL:
            self._stall(reply.stall_seconds)
        if reply.interruption in (Interruption.CUT, Interruption.TRUNCATE):
            self._cut()  # a JSON body cannot end early and stay well-formed: drop it instead
        if reply.interruption is Interruption.ERROR_EVENT:
            error_type = reply.error_type or "api_error"
            status = ERROR_STATUS.get(error_type, 500)
            message = reply.error_message or _default_error_message(error_type)
            self._send_json(status, error_body(error_type, message, request_id), request_id, reply.headers)
            return
        self._send_json(
            200,
            message_json(reply, message_id=message_id, model=model, input_tokens=input_tokens),
            request_id,
            reply.headers,
        )

    def _stream(
        self, reply: Reply, record: RecordedRequest, *, request_id: str, message_id: str, model: str, input_tokens: int
    ) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", request_id)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

        tokens_sent = 0
        interrupted = False

        def interrupt_due() -> bool:
            return reply.interruption is not None and not interrupted and tokens_sent >= reply.after_tokens

        for frame in message_frames(reply, message_id=message_id, model=model, input_tokens=input_tokens):
            if interrupt_due():
                interrupted = True
                if reply.interruption is Interruption.STALL:
                    self._stall(reply.stall_seconds)
                elif reply.interruption is Interruption.CUT:
                    self._cut()
                elif reply.interruption is Interruption.TRUNCATE:
                    self._end_chunks()
                    return
                else:
                    error_type = reply.error_type or "api_error"
                    message = reply.error_message or _default_error_message(error_type)
                    self._chunk(encode_event("error", error_body(error_type, message, request_id)))
                    self._end_chunks()
                    return
            if frame.is_token:
                if tokens_sent and reply.token_delay and self.server.owner._stopping.wait(reply.token_delay):
                    self._cut()
                tokens_sent += 1
            self._chunk(frame.data)
        self._end_chunks()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> NoReturn:
        """Drop the connection without finishing the body: the client sees an incomplete response."""
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _ConnectionCut

    def _stall(self, seconds: float) -> None:
        """Send nothing for `seconds`, noticing if the client hangs up (its socket turns readable at EOF)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.server.owner._stopping.is_set():
                self._cut()
            readable, _, _ = select.select([self.connection], [], [], min(0.05, remaining))
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                raise _ClientGone

    def _send_json(
        self, status: int, payload: dict[str, Any], request_id: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", request_id)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a stalled handler must not hold up `stop()`; `_stopping` releases it

    def __init__(self, address: tuple[str, int], owner: MessagesServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up on an idle keep-alive connection is normal; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class MessagesServer:
    """The server on 127.0.0.1, in a background thread. Use as a context manager.

    with MessagesServer([Reply.tool_use("calculator", {"expression": "2+2"}), Reply.text("4")]) as server:
        client = anthropic.Anthropic(api_key="test", base_url=server.base_url)
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        refuse_prefill_models: Iterable[str] = (),
        repeat_tail_words: int = DEFAULT_REPEAT_TAIL_WORDS,
    ) -> None:
        """`refuse_prefill_models`: models that answer a prefill with the 4.6 models' 400;
        `repeat_tail_words`: how many words a continuation asked for in a user message repeats."""
        self.refuse_prefill_models = frozenset(refuse_prefill_models)
        self.repeat_tail_words = repeat_tail_words
        self._replies: deque[Reply] = deque(replies)
        self._default = default or Reply.text()
        self._address = (host, port)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, after any still queued."""
        with self._lock:
            self._replies.extend(replies)

    def start(self) -> Self:
        self._stopping.clear()
        self._server = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="messages-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command-line entry point)."""
        self._server = _HTTPServer(self._address, self)
        try:
            self._server.serve_forever()
        finally:
            self._stopping.set()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else self._default


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local server speaking the Anthropic Messages streaming protocol.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the reply to every request")
    parser.add_argument("--token-delay-ms", type=float, default=20.0, help="delay between text deltas")
    parser.add_argument(
        "--refuse-prefill-model", action="append", default=[], metavar="MODEL",
        help="answer a prefill for this model with the 400 the 4.6 models give (repeatable)",
    )
    parser.add_argument(
        "--repeat-tail-words", type=int, default=DEFAULT_REPEAT_TAIL_WORDS,
        help="words a continuation asked for in a user message repeats before carrying on",
    )
    args = parser.parse_args(argv)
    server = MessagesServer(
        default=Reply.text(args.text, token_delay=args.token_delay_ms / 1000),
        host=args.host,
        port=args.port,
        refuse_prefill_models=args.refuse_prefill_model,
        repeat_tail_words=args.repeat_tail_words,
    )
    print(f"Messages API on http://{args.host}:{args.port} (POST /v1/messages); Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
