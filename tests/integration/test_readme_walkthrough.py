"""README's curl walk-through, run as written against the local stack (`make dev`'s), so it cannot drift.

Every command of the walk-through's bash blocks runs in bash, in order, with the README's
placeholders filled in from what the earlier commands answered (`run_…`: the latest run id,
`apr_…`: the latest approval id). The output lines the README shows as comments are checked
against what the commands printed: `# id: N`, `# event: X`, `# data: {…}` and `# {…}` lines.
A shown JSON object must appear in the output: exactly where it is complete (timestamps aside), and
by its keys and literal values where it elides with `…`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
LOCAL_BASE = "http://127.0.0.1:8000"
SHOWN = re.compile(r"^# (id: \d+|event: \w+|data: \{.*\}|\{.*\})$")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ELIDED = "…"


@dataclass
class Command:
    text: str
    shown: list[str] = field(default_factory=list)

    @property
    def streams(self) -> bool:
        return " -N " in f" {self.text} "

    @property
    def reads(self) -> bool:
        """A GET: safe to repeat."""
        return not re.search(r"(^|\s)(-d|-X|--data)\s", self.text)

    @property
    def shown_json(self) -> list[str]:
        return [line.removeprefix("data: ") for line in self.shown if line.startswith(("{", "data: "))]


def walkthrough_blocks() -> list[list[Command]]:
    text = README.read_text()
    start = text.index("## A walk-through (CLI and curl)")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.S)
    return [commands_of(block) for block in blocks]


def commands_of(block: str) -> list[Command]:
    commands: list[Command] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            pending += "\n" + line
        elif line.startswith("#") or not line.strip():
            if commands and SHOWN.match(line.rstrip()):
                commands[-1].shown.append(line.rstrip()[2:])
            continue
        else:
            pending = line
        if not pending.endswith("\\"):
            commands.append(Command(pending))
            pending = ""
    return commands


class Session:
    """Runs the commands as a reader of the README would, in one shell environment."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        # The CLI's commands use its defaults but for the stack's random port; `runwire` is the
        # test venv's (make install installs the client package there).
        self.env = {**os.environ, "JWT": token, "RUNWIRE_BASE_URL": base_url,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.run_id: str | None = None
        self.approval_id: str | None = None
        self.streams: list[tuple[subprocess.Popen[str], Command]] = []
        self.outputs: list[tuple[str, Command]] = []

    def fill_in(self, command: str) -> str:
        command = command.replace(LOCAL_BASE, self.base_url)
        if "run_…" in command:
            assert self.run_id, f"no run started before: {command}"
            command = command.replace("run_…", self.run_id)
        if re.search(r"apr_\w*…", command):
            assert self.approval_id, f"no approval asked for before: {command}"
            command = re.sub(r"apr_\w*…", self.approval_id, command)
        return command

    def run(self, command: Command) -> None:
        filled = self.fill_in(command.text)
        if command.streams:
            # A stream may stay open (a run that waits for its client): read it alongside.
            process = subprocess.Popen(["bash", "-c", filled], env=self.env, stdout=subprocess.PIPE, text=True)
            self.streams.append((process, command))
            time.sleep(0.5)
            return
        deadline = time.monotonic() + 15
        while True:
            result = subprocess.run(["bash", "-c", filled], env=self.env, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{filled}\n{result.stderr}"
            # A reader looks again until a GET shows what the README shows (a run it just started
            # may not be waiting yet): a script is faster than a person.
            settled = not command.reads or all(shows(json_objects(result.stdout), line) for line in command.shown_json)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.outputs.append((result.stdout, command))
        self.learn(result.stdout)

    def learn(self, output: str) -> None:
        try:
            body = json.loads(output)
        except json.JSONDecodeError:
            return
        if isinstance(body, dict) and body.get("runId"):
            self.run_id = body["runId"]
        for action in body.get("pendingActions") or [] if isinstance(body, dict) else []:
            if action.get("approvalId"):
                self.approval_id = action["approvalId"]

    def finish_streams(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for process, command in self.streams:
            try:
                output, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
                raise AssertionError(f"the stream never ended: {command.text}\n{output[-2000:]}") from None
            self.outputs.append((output, command))
        self.streams.clear()

    def printed(self) -> str:
        return "\n".join(output for output, _ in self.outputs)


def json_objects(printed: str) -> list[Any]:
    """Every JSON object printed: whole outputs and SSE `data:` lines."""
    found: list[Any] = []
    for candidate in [printed, *printed.splitlines()]:
        candidate = candidate.removeprefix("data: ").strip()
        if candidate.startswith("{"):
            try:
                found.append(json.loads(candidate))
            except json.JSONDecodeError:
                continue
    return found


def contains(actual: Any, shown: Any) -> bool:
    """`shown` is part of `actual`: every shown key with an equal value (any timestamp will do)."""
    if isinstance(shown, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in shown.items())
    if isinstance(shown, list):
        return isinstance(actual, list) and len(actual) == len(shown) and all(map(contains, actual, shown))
    if isinstance(shown, str) and ISO_TIME.match(shown):
        return isinstance(actual, str) and bool(ISO_TIME.match(actual))
    return actual == shown


def flatten(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in [(k, v), *flatten(v)]]
    if isinstance(value, list):
        return [pair for item in value for pair in flatten(item)]
    return []


def elided_parts(shown: str) -> tuple[set[str], dict[str, str]]:
    """What an elided object still says: its keys, and the string values it shows whole."""
    keys = set(re.findall(r'"(\w+)":', shown))
    literals = {k: v for k, v in re.findall(r'"(\w+)":\s*"([^"…]*)"(?=\s*[,}\]])', shown)}
    return keys, literals


def shows(objects: list[Any], shown: str) -> bool:
    try:
        expected = json.loads(shown)
    except json.JSONDecodeError:
        assert ELIDED in shown, f"README shows broken JSON: {shown}"
        keys, literals = elided_parts(shown)
        return any(
            keys <= {k for k, _ in flatten(o)} and all((k, v) in flatten(o) for k, v in literals.items())
            for o in objects
        )
    return any(contains(o, expected) for o in objects)


def check_block(session: Session, commands: list[Command]) -> None:
    for command in commands:
        session.run(command)
    session.finish_streams()
    printed = session.printed()
    objects = json_objects(printed)
    for command in commands:
        for line in command.shown:
            if line.startswith(("id: ", "event: ")):
                assert re.search(rf"^{re.escape(line)}$", printed, flags=re.M), f"README shows `{line}` after\n{command.text}\nprinted:\n{printed}"
        for shown in command.shown_json:
            assert shows(objects, shown), f"README shows {shown} after\n{command.text}\nprinted:\n{printed}"
    session.outputs.clear()


def test_the_walkthrough_has_commands_and_shows_their_output():
    blocks = walkthrough_blocks()
    assert len(blocks) >= 2
    assert sum(len(c.shown) for block in blocks for c in block) >= 20


@pytest.mark.parametrize("index", range(len(walkthrough_blocks())))
def test_readme_walkthrough_block_runs_as_written(stack, index):
    session = Session(stack.base_url, stack.token())
    check_block(session, walkthrough_blocks()[index])
