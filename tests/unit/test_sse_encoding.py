"""Golden bytes: what goes on the wire for every event shape."""

import pytest

from runwire.core.models import EndChunk, RunStatus, StoredChunk, TextChunk, ToolUseChunk, UsageChunk
from runwire.formats.runwire_events import RunwireEventsFormat
from runwire.formats.sse import PING, ServerSentEvent


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ServerSentEvent(data="hello"), b"data: hello\n\n"),
        (ServerSentEvent(data="a\nb"), b"data: a\ndata: b\n\n"),
        (ServerSentEvent(data="a\r\nb\rc"), b"data: a\ndata: b\ndata: c\n\n"),
        (ServerSentEvent(data=""), b"data: \n\n"),
        (ServerSentEvent(event="end", data="{}", id="7"), b"id: 7\nevent: end\ndata: {}\n\n"),
        (ServerSentEvent(retry_ms=1500), b"retry: 1500\n\n"),
        (ServerSentEvent(comment="ping"), b": ping\n\n"),
    ],
)
def test_server_sent_event_encodes_exact_bytes(event, expected):
    assert event.encode() == expected


def test_ping_is_a_comment_every_parser_ignores():
    assert PING == b": ping\n\n"


def test_event_id_with_newline_is_refused():
    with pytest.raises(ValueError):
        ServerSentEvent(id="1\n2", data="x").encode()


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (
            StoredChunk(seq=1, chunk=TextChunk(text="Hi"), written_at=0),
            b'id: 1\nevent: data\ndata: {"type":"text","text":"Hi"}\n\n',
        ),
        (
            StoredChunk(seq=2, chunk=ToolUseChunk(id="t1", name="calculator", input={"expression": "1+1"}), written_at=0),
            b'id: 2\nevent: data\ndata: {"type":"tool_use","id":"t1","name":"calculator","input":{"expression":"1+1"},"executor":"server"}\n\n',
        ),
        (
            StoredChunk(seq=3, chunk=UsageChunk(model="claude-x", input_tokens=412, output_tokens=128), written_at=0),
            b'id: 3\nevent: data\ndata: {"type":"usage","model":"claude-x","inputTokens":412,"outputTokens":128}\n\n',
        ),
        (
            StoredChunk(seq=4, chunk=EndChunk(status=RunStatus.SUCCEEDED), written_at=0),
            b'id: 4\nevent: end\ndata: {"status":"succeeded"}\n\n',
        ),
        (
            StoredChunk(seq=6, chunk=EndChunk(status=RunStatus.CANCELLED), written_at=0),
            b'id: 6\nevent: end\ndata: {"status":"cancelled"}\n\n',
        ),
        (
            StoredChunk(seq=5, chunk=TextChunk(text="two\nlines"), written_at=0),
            b'id: 5\nevent: data\ndata: {"type":"text","text":"two\\nlines"}\n\n',
        ),
    ],
)
def test_seed000_format_matches_the_documented_wire_shape(stored, expected):
    assert RunwireEventsFormat().encoder(None).encode(stored) == expected
