"""What the CLI writes to a terminal for text it did not write itself, without a server: control
characters from the model or a tool (OSC 52 writes the clipboard, CSI moves the cursor) never
reach it (review of issue 11, point 10)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from runwire_client import EndChunk, TextChunk, ToolUseChunk
from runwire_client.terminal import AnswerView, printable

SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_control_characters_from_the_run_never_reach_the_terminal():
    written = io.StringIO()
    view = AnswerView(Console(file=written, force_terminal=True, width=100, height=30))
    view.show(TextChunk(text="Copied\x1b]52;c;ZXZpbA==\x1b\\ it\x9b2J\x00 all\tdone."))
    view.show(ToolUseChunk(id="t1", name="calc\x1b[2J", input={"x": "\x9d0;owned\x9c"}))
    view.show(EndChunk(status="succeeded"))
    out = written.getvalue()
    for sequence in ("\x1b]52", "\x1b\\", "\x9b", "\x9d", "\x9c", "\x00", "\x1b[2J"):
        assert sequence not in out, repr(sequence)
    plain = SGR.sub("", out)
    assert "Copied]52;c;ZXZpbA==\\ it2J all" in plain and 'calc[2J {"x": "0;owned"}' in plain


def test_printable_keeps_newlines_tabs_and_every_printable_character():
    assert printable("a\tb\nc é ✓ \x1b[31mred\x07\r") == "a\tb\nc é ✓ [31mred"
