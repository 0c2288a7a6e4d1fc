"""The playground's SSE decoder against the HTML spec's event stream interpretation ("Server-sent
events", 9.2.6): a table of streams and the exact events each must give, whole, one byte per read
and split in two at every byte. Runs the page's own module with node (no browser, no stack)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "js"


def event(data: str, type_: str = "message", id_: str | None = None) -> dict[str, str | None]:
    return {"type": type_, "data": data, "id": id_}


CASES: dict[str, tuple[str, list[dict[str, str | None]]]] = {
    "runwire_data_then_end": (
        'id: 1\nevent: data\ndata: {"type":"text","text":"Hi"}\n\nid: 2\nevent: end\ndata: {"status":"succeeded"}\n\n',
        [event('{"type":"text","text":"Hi"}', "data", "1"), event('{"status":"succeeded"}', "end", "2")],
    ),
    "crlf_and_cr_line_ends": (
        "id: 7\r\nevent: data\r\ndata: a\r\n\r\ndata: b\r\rdata: c\n\n",
        [event("a", "data", "7"), event("b"), event("c")],
    ),
    "comments_and_pings_are_not_events": (": ping\n\n:another\ndata: x\n\n", [event("x")]),
    "multi_line_data_joined_with_newlines": ("data: one\ndata: two\ndata:\n\n", [event("one\ntwo\n")]),
    "one_space_after_the_colon_is_dropped_no_more": ("data:  two spaces\ndata:none\n\n", [event(" two spaces\nnone")]),
    "a_field_without_a_colon_is_its_name_with_an_empty_value": ("data\ndata\n\n", [event("\n")]),
    "an_event_without_data_is_not_dispatched": ("id: 3\nevent: data\n\ndata: y\n\n", [event("y")]),
    "an_id_with_nul_is_ignored": ("id: 4\u00005\ndata: z\n\n", [event("z")]),
    "unknown_fields_and_retry_are_ignored": ("retry: 10\nfoo: bar\ndata: w\n\n", [event("w")]),
    "multi_byte_characters_survive_every_split": ("data: żółw 🐢 — ok\n\n", [event("żółw 🐢 — ok")]),
    "a_leading_bom_is_stripped": ("\ufeffdata: bom\n\n", [event("bom")]),
    "an_unfinished_last_event_is_dropped": ("data: done\n\ndata: cut off", [event("done")]),
    # At the end of the stream no \n can follow a last \r: it ends the line (and here the event).
    "a_lone_cr_at_the_end_of_the_stream_ends_its_last_event": ("id: 9\rdata: last\r\r", [event("last", id_="9")]),
    "a_lone_cr_after_a_line_feed_at_the_end_dispatches_too": ("data: a\n\r", [event("a")]),
}


def test_the_decoder_gives_each_streams_events_however_its_bytes_arrive() -> None:
    if shutil.which("node") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must install node")
        pytest.skip("node is not installed")
    cases = {name: text for name, (text, _) in CASES.items()}
    completed = subprocess.run(["node", "playground_sse.mjs", json.dumps(cases)], cwd=JS, capture_output=True,
                               text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    decoded = json.loads(completed.stdout)
    for name, (_, expected) in CASES.items():
        got = decoded[name]
        assert got["whole"] == expected, name
        assert got["bytewise"] == expected, name
        for at, split in enumerate(got["splits"], start=1):
            assert split == expected, (name, at)
