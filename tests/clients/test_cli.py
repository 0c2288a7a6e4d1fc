"""The `runwire` command as a person uses it: in a pseudo-terminal (pexpect), typing and reading the
screen, against the local stack. Scripts' uses (`--json`, `runs …`, `token`) run without a terminal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pexpect
import pyte
import pytest

from devstack.token import DEV_JWT_SECRET
from runwire_client import Runwire
from runwire_client.tokens import LOCAL_DEV_SECRET
from tests.integration.conftest import SECRET

from .conftest import sdk_config
from .network import ScriptedAnswer, ScriptedServer

pytestmark = pytest.mark.integration

RUNWIRE = str(Path(sys.executable).parent / "runwire")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def cli_environment(stack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNWIRE_") and k not in ("COLUMNS", "LINES")}
    return {**env, "RUNWIRE_BASE_URL": stack.base_url, "RUNWIRE_TOKEN": stack.token(), "TERM": "xterm-256color", **extra}


class Screen:
    """A `runwire` in a pseudo-terminal; `wait_for` reads what it has written, escape codes removed."""

    def __init__(self, stack, *args: str, rows: int = 40, columns: int = 160) -> None:
        self.child = pexpect.spawn(RUNWIRE, list(args), env=cli_environment(stack), dimensions=(rows, columns),
                                   encoding="utf-8", timeout=30)
        self.raw = ""
        self.rows, self.columns = rows, columns

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text)
            if found:
                return found
            if time.monotonic() > deadline or not self.child.isalive() and not self._read():
                raise AssertionError(f"{pattern!r} never appeared on the screen:\n{self.text[-3000:]}")
            self._read()

    def _read(self) -> bool:
        try:
            self.raw += self.child.read_nonblocking(4096, timeout=0.2)
            return True
        except pexpect.TIMEOUT:
            return False
        except pexpect.EOF:
            return False

    def scrollback(self) -> str:
        """What a person can scroll through once it is over: a terminal emulator (pyte) fed every
        byte written, its history and its screen; unlike `text`, redrawn frames count once."""
        terminal = pyte.HistoryScreen(self.columns, self.rows, history=10_000)
        pyte.Stream(terminal).feed(self.raw)
        history = ["".join(line[x].data for x in range(self.columns)) for line in terminal.history.top]
        return "\n".join(line.rstrip() for line in [*history, *terminal.display])

    def exit_status(self) -> int:
        self.child.expect(pexpect.EOF, timeout=30)
        self.raw += self.child.before or ""
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)


def run_status(stack, run_id: str) -> str:
    with Runwire(**sdk_config(stack)) as client:
        return client.runs.get(run_id).status


def test_run_shows_the_streamed_answer_tool_activity_and_usage(client_stack):
    screen = Screen(client_stack, "run", "What is 17 * 23?")
    screen.wait_for(r"run succeeded · usage: \d+ input \+ \d+ output tokens \(scripted-1\)")
    assert screen.exit_status() == 0
    text = screen.text
    assert '⚙ calculator {"expression": "17 * 23"}' in text and '"result": 391' in text
    assert "17 * 23 = 391. I used the calculator to get an exact answer." in text


def test_an_approval_prompt_answered_y_completes_the_run(client_stack):
    screen = Screen(client_stack, "run", "--agent", "careful", "What is 17 * 23?")
    screen.wait_for(r'Allow calculator \{"expression": "17 \* 23"\}\? \[y/n\]')
    run_id = screen.wait_for(r"run (run_\w+)").group(1)
    assert run_status(client_stack, run_id) == "requires_action"
    screen.child.sendline("y")
    screen.wait_for(r"run succeeded")
    assert screen.exit_status() == 0
    assert "17 * 23 = 391" in screen.text and run_status(client_stack, run_id) == "succeeded"


def test_an_approval_answered_n_denies_the_tool(client_stack):
    screen = Screen(client_stack, "run", "--agent", "careful", "What is 6 * 7?")
    screen.wait_for(r"Allow calculator .*\[y/n\]")
    screen.child.sendline("n")
    screen.wait_for(r"run succeeded")
    assert screen.exit_status() == 0
    assert "I did not run that tool: denied: denied at the command line" in screen.text


def test_a_client_tool_request_is_answered_with_json_at_the_prompt(client_stack):
    screen = Screen(client_stack, "run", "--client-tool", "get_location:The user's city", "Where am I? Use get_location.")
    screen.wait_for(r"⚙ get_location \{\} \(your client runs it\)")
    screen.wait_for(r"Output of get_location \{\} as JSON: $")
    screen.child.sendline("Lisbon, not JSON")
    screen.wait_for(r"not JSON")
    screen.child.sendline('{"city": "Lisbon"}')
    screen.wait_for(r"run succeeded")
    assert screen.exit_status() == 0
    assert '✓ result {"city": "Lisbon"}' in screen.text and 'The tool returned: {"city": "Lisbon"}' in screen.text


def test_approval_required_from_the_command_line(client_stack):
    screen = Screen(client_stack, "run", "--approval-required", "calculator", "What is 2 + 2?")
    screen.wait_for(r"Allow calculator .*\[y/n\]")
    screen.child.sendline("y")
    screen.wait_for(r"run succeeded")
    assert screen.exit_status() == 0 and "2 + 2 = 4" in screen.text


def test_ctrl_c_cancels_the_run(client_stack):
    screen = Screen(client_stack, "run", "[[scripted tokens=400 delay_ms=50]]")
    run_id = screen.wait_for(r"run (run_\w+)").group(1)
    screen.wait_for(r"1 2 3 4 5")
    screen.child.sendintr()
    screen.wait_for(rf"cancelled run {run_id}")
    assert screen.exit_status() == 130
    assert run_status(client_stack, run_id) == "cancelled"


def test_ctrl_c_with_detach_leaves_the_run_going(client_stack):
    screen = Screen(client_stack, "run", "--detach", "[[scripted tokens=100 delay_ms=50]]")
    run_id = screen.wait_for(r"run (run_\w+)").group(1)
    screen.wait_for(r"1 2 3")
    screen.child.sendintr()
    screen.wait_for(rf"detached: run {run_id} goes on")
    assert screen.exit_status() == 0
    assert run_status(client_stack, run_id) in ("running", "succeeded")


def test_an_answer_taller_than_the_terminal_is_in_the_scrollback_once(client_stack):
    """rich's Live taller than the screen repeated itself in the scrollback (rich issue #3263)."""
    screen = Screen(client_stack, "run", "[[scripted tokens=400 delay_ms=10]]", rows=20, columns=40)
    screen.wait_for(r"run succeeded")
    assert screen.exit_status() == 0
    scrollback = screen.scrollback()
    answer = scrollback[scrollback.index("\n", scrollback.index("run run_")):scrollback.index("■ run succeeded")]
    assert re.findall(r"\d+", answer) == [str(n) for n in range(1, 401)], scrollback[-2000:]


def test_markdown_in_the_answer_is_rendered_not_shown(client_stack):
    """The scripted model repeats the task in its answer ('a short answer about "…"')."""
    screen = Screen(client_stack, "run", "**bold claims** and `code`")
    screen.wait_for(r"run succeeded")
    assert screen.exit_status() == 0
    assert 'a short answer about "bold claims and code"' in screen.scrollback()
    assert "**" not in screen.text and "`" not in screen.text


def test_ctrl_c_in_chat_cancels_the_answer_and_returns_to_the_prompt(client_stack):
    screen = Screen(client_stack, "chat")
    screen.wait_for(r"you: $")
    screen.child.sendline("[[scripted tokens=400 delay_ms=50]]")
    screen.wait_for(r"1 2 3 4 5")
    screen.child.sendintr()
    run_id = screen.wait_for(r"cancelled run (run_\w+)").group(1)
    screen.wait_for(r"cancelled run [^\n]*\n+you: $")
    with Runwire(**sdk_config(client_stack)) as client:
        assert list(client.runs.stream(run_id))[-1].status == "cancelled"
    screen.child.sendline("/exit")
    assert screen.exit_status() == 0


def test_ctrl_c_while_the_run_is_being_started_says_it_may_be_running(client_stack):
    """Before `POST /v1/runs` answers, the CLI has no id to cancel: it says so instead of leaving quietly."""
    slow_start = ScriptedAnswer(202, {"runId": "run_slow", "status": "queued"}, hold_seconds=10)
    with ScriptedServer([slow_start]) as server:
        screen = Screen(client_stack, "run", "--base-url", server.url, "--token", "t", "Hi")
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests, "the start never reached the server"
        screen.child.sendintr()
        screen.wait_for(r"stopped while the run was being started: it may be running \(runwire runs list\)")
        assert screen.exit_status() == 130


def test_chat_turns_remember_each_other(client_stack):
    screen = Screen(client_stack, "chat", "--conversation", "cli-chat-1")
    screen.wait_for(r"conversation cli-chat-1")
    screen.wait_for(r"you: $")
    screen.child.sendline("My name is Alex.")
    screen.wait_for(r"Nice to meet you, Alex\.")
    screen.wait_for(r"run succeeded[^\n]*\n+you: $")
    screen.child.sendline("What is my name?")
    screen.wait_for(r"Your name is Alex\. You told me earlier in this conversation\.")
    screen.wait_for(r"run succeeded(?:.|\n)*run succeeded[^\n]*\n+you: $")
    screen.child.sendline("/exit")
    assert screen.exit_status() == 0


# --- for scripts: no terminal --------------------------------------------------------------------
def runwire(stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUNWIRE, *args], env=cli_environment(stack, **env), capture_output=True, text=True, timeout=60)


def test_run_json_prints_one_event_per_line(client_stack):
    done = runwire(client_stack, "run", "--json", "What is 6 * 7?")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1] == {"seq": len(events), "event": "end", "data": {"status": "succeeded"}}
    assert events[0]["data"]["type"] == "tool_use" and events[-2]["data"]["type"] == "usage"


@pytest.mark.parametrize(("flags", "said", "status"), [((), "cancelled run", 130), (("--detach",), "detached: run", 0)],
                         ids=["cancel", "detach"])
def test_ctrl_c_with_json_says_what_it_did_on_stderr(client_stack, flags, said, status):
    process = subprocess.Popen([RUNWIRE, "run", "--json", *flags, "[[scripted tokens=400 delay_ms=50]]"],
                               env=cli_environment(client_stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    events = [json.loads(line) for line in [first, *out.splitlines()]]
    assert process.returncode == status and said in err, err
    assert events[0]["seq"] == 1 and said not in out


def test_runs_get_events_list_and_cancel(client_stack):
    done = runwire(client_stack, "run", "--json", "Hi")
    run_id = re.fullmatch(r"run (run_\w+)\n", done.stderr).group(1)
    listed = json.loads(runwire(client_stack, "runs", "list", "--json", "--limit", "100").stdout)["runs"]
    assert run_id in [run["runId"] for run in listed]
    run = json.loads(runwire(client_stack, "runs", "get", run_id).stdout)
    events = [json.loads(line) for line in runwire(client_stack, "runs", "events", run_id).stdout.splitlines()]
    assert run["status"] == "succeeded" and events == [json.loads(line) for line in done.stdout.splitlines()]
    refused = runwire(client_stack, "runs", "cancel", run_id)
    assert refused.returncode == 1 and "409 run_conflict" in refused.stderr
    missing = runwire(client_stack, "runs", "get", "run_nope")
    assert missing.returncode == 1 and "404 run_not_found" in missing.stderr


def test_no_token_says_how_to_get_one(client_stack):
    done = runwire(client_stack, "run", "Hi", RUNWIRE_TOKEN="")
    assert done.returncode == 2 and "runwire token" in done.stdout


def test_token_is_a_local_dev_token_the_stack_accepts(client_stack):
    token = runwire(client_stack, "token", "--org", "my-org", JWT_SECRET=SECRET).stdout.strip()
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["org"] == "my-org"
    done = runwire(client_stack, "runs", "list", "--limit", "1", RUNWIRE_TOKEN=token)
    assert done.returncode == 0, done.stderr
    assert LOCAL_DEV_SECRET == DEV_JWT_SECRET, "`runwire token` signs with make dev's default secret"
