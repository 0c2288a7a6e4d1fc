"""`runwire`: start and follow runs from a terminal.

    runwire run "What is 17 * 23?" [--agent chat] [--conversation c1] [--json] [--detach]
                [--approval-required calculator] [--client-tool get_location:"The user's city"]
    runwire runs get|cancel|events RUN        runwire runs list [--status S] [--conversation C]
    runwire chat [--agent chat] [--conversation c1]
    runwire token [--org my-org]

Where and who: `--base-url`, `--stream-url`, `--token`, `--org`, or RUNWIRE_BASE_URL,
RUNWIRE_STREAM_URL, RUNWIRE_TOKEN, RUNWIRE_ORG. Ctrl-C once a run has started cancels it (with
`--detach`, leaves it running); with `--json` what it says goes to stderr. Exit status: 0 when the run succeeded, 1 when it failed, expired or
was cancelled elsewhere, 130 when Ctrl-C cancelled it, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.table import Column, Table

from .chunks import EndChunk, RequiresActionChunk
from .client import Runwire
from .errors import ConflictError, RunwireClientError
from .terminal import AnswerView, answer_waiting_run
from .tokens import mint_dev_token

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def connection_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("where and who (default: the RUNWIRE_* environment variables)")
    group.add_argument("--base-url", help="the API's base URL (RUNWIRE_BASE_URL; default http://127.0.0.1:8000)")
    group.add_argument("--stream-url", help="the stream routes' base URL (RUNWIRE_STREAM_URL; default the base URL)")
    group.add_argument("--token", help="a JWT (RUNWIRE_TOKEN; for a local stack: runwire token)")
    group.add_argument("--org", help="the org (RUNWIRE_ORG; default the token's own)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runwire", description="Start and follow runwire agent runs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    connection = connection_options()

    run = commands.add_parser("run", parents=[connection], help="start a run and show its answer as it streams")
    run.add_argument("task", help="the prompt")
    add_run_options(run)
    run.add_argument("--conversation", help="a conversation id: the run remembers its earlier turns")
    run.add_argument("--json", action="store_true", help="print the raw events, one JSON object per line")
    run.add_argument("--detach", action="store_true", help="Ctrl-C leaves the run running instead of cancelling it")

    runs = commands.add_parser("runs", help="read, cancel or list runs")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    for name, text in (("get", "the run's state, output and usage (JSON)"), ("cancel", "cancel the run")):
        runs_commands.add_parser(name, parents=[connection], help=text).add_argument("run_id", metavar="RUN")
    events = runs_commands.add_parser("events", parents=[connection], help="the run's events, one JSON per line")
    events.add_argument("run_id", metavar="RUN")
    events.add_argument("--after", type=int, default=0, help="only the events after this seq")
    listing = runs_commands.add_parser("list", parents=[connection], help="your org's runs, newest first")
    listing.add_argument("--status", help="only runs in this status")
    listing.add_argument("--conversation", help="only this conversation's runs")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true", help="print the page as JSON")

    chat = commands.add_parser("chat", parents=[connection], help="an interactive conversation")
    add_run_options(chat)
    chat.add_argument("--conversation", help="carry on this conversation (default: a new one)")

    token = commands.add_parser("token", help="mint a dev token for a local stack (JWT_SECRET or its default)")
    token.add_argument("--org", default=os.environ.get("RUNWIRE_ORG") or "my-org")
    token.add_argument("--sub", default="dev-user", help="the token's subject")
    token.add_argument("--hours", type=float, default=12, help="how long it is valid")
    return parser


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", default="chat", help="the agent's role (default: chat)")
    parser.add_argument("--approval-required", action="append", metavar="TOOL", default=[],
                        help="a server tool that asks you (y/n) before it runs; repeatable")
    parser.add_argument("--client-tool", action="append", metavar="NAME[:DESCRIPTION]", default=[],
                        help="a tool you answer at the prompt with a JSON value; repeatable")


def run_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The run request's fields from `run` and `chat`'s options."""
    tools = [
        {"name": name, "description": description, "inputSchema": {"type": "object", "properties": {}}}
        for name, _, description in (spec.partition(":") for spec in args.client_tool)
    ]
    return {
        "agent_role": args.agent,
        "conversation_id": args.conversation,
        "approval_required": args.approval_required or None,
        "client_mcp_tools": tools or None,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(run_command(args))
    except KeyboardInterrupt:  # outside a run's stream (a prompt, a request under way): leave quietly
        sys.exit(EXIT_INTERRUPTED)


def run_command(args: argparse.Namespace) -> int:
    console = Console()
    if args.command == "token":
        print(mint_dev_token(args.org, subject=args.sub, hours=args.hours))
        return EXIT_OK
    client = Runwire(base_url=args.base_url, stream_url=args.stream_url, token=args.token, org=args.org)
    if client.config.token is None:
        console.print("[red]no token[/]: pass --token or set RUNWIRE_TOKEN "
                      "(for a local stack: export RUNWIRE_TOKEN=$(runwire token))", highlight=False)
        return EXIT_USAGE
    try:
        with client:
            return dispatch(client, args, console)
    except RunwireClientError as error:
        Console(stderr=True).print(f"[red]error[/] {escape(str(error))}", highlight=False)
        return EXIT_FAILED


def dispatch(client: Runwire, args: argparse.Namespace, console: Console) -> int:
    if args.command == "run":
        return start_and_follow(client, args.task, run_fields(args), console, as_json=args.json, detach=args.detach)
    if args.command == "chat":
        return chat(client, args, console)
    if args.runs_command == "get":
        print_json(client.runs.get(args.run_id).wire())
    elif args.runs_command == "cancel":
        print_json(client.runs.cancel(args.run_id).wire())
    elif args.runs_command == "events":
        print_events(client, args.run_id, args.after)
    elif args.runs_command == "list":
        page = client.runs.list(status=args.status, conversation_id=args.conversation, limit=args.limit)
        if args.json:
            print_json(page.wire())
        else:
            console.print(runs_table(page.runs))
    return EXIT_OK


def start_and_follow(
    client: Runwire, task: str, fields: dict[str, Any], console: Console, *, as_json: bool, detach: bool,
    announce: bool = True,
) -> int:
    """Start a run and stream it to its end. Ctrl-C from the moment its id is known cancels it (or,
    with `detach`, leaves it), also between the start and the stream's first byte."""
    # With --json, stdout is the events alone: the run id and what Ctrl-C did go to stderr.
    notices = Console(stderr=True) if as_json else console
    run_id: str | None = None
    try:
        run_id = client.runs.create(task, **fields).run_id
        if announce:
            notices.print(f"[dim]run {run_id}[/]", highlight=False)
        return follow_run(client, run_id, console, as_json=as_json)
    except KeyboardInterrupt:
        if run_id is None:
            notices.print("stopped while the run was being started: it may be running (runwire runs list)",
                          highlight=False)
            return EXIT_INTERRUPTED
        return interrupted(client, run_id, notices, detach=detach)


def follow_run(client: Runwire, run_id: str, console: Console, *, as_json: bool) -> int:
    """Stream the run to its end on the terminal (Ctrl-C is the caller's: `start_and_follow`)."""
    view = AnswerView(console)
    stream = client.runs.stream(run_id)
    ended: EndChunk | None = None
    try:
        for chunk in stream:
            if isinstance(chunk, EndChunk):
                ended = chunk
            if as_json:
                print(json.dumps(chunk.as_event(), ensure_ascii=False), flush=True)
                continue
            view.show(chunk)
            if isinstance(chunk, RequiresActionChunk):
                answer_waiting_run(client, run_id, chunk, console)
    finally:
        view.pause()
        stream.close()
    return EXIT_OK if ended is not None and ended.status == "succeeded" else EXIT_FAILED


def interrupted(client: Runwire, run_id: str, console: Console, *, detach: bool) -> int:
    if detach:
        console.print(f"detached: run {run_id} goes on (runwire runs get {run_id})", highlight=False)
        return EXIT_OK
    try:
        run = client.runs.cancel(run_id)
    except ConflictError:
        console.print(f"run {run_id} had already finished", highlight=False)
        return EXIT_INTERRUPTED
    console.print(f"[yellow]cancelled run {run_id}[/] (status: {run.status})", highlight=False)
    return EXIT_INTERRUPTED


def chat(client: Runwire, args: argparse.Namespace, console: Console) -> int:
    args.conversation = args.conversation or f"chat-{secrets.token_hex(6)}"
    conversation = args.conversation
    console.print(f"[dim]conversation {conversation} · Ctrl-C stops an answer · Ctrl-D or /exit leaves[/]",
                  highlight=False)
    while True:
        try:
            message = Prompt.ask("[bold]you[/]", console=console).strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return EXIT_OK
        if message in ("/exit", "/quit"):
            return EXIT_OK
        if not message:
            continue
        start_and_follow(client, message, {**run_fields(args), "multitask_strategy": "enqueue"}, console,
                         as_json=False, detach=False, announce=False)


def print_events(client: Runwire, run_id: str, after: int) -> None:
    while True:
        page = client.runs.events(run_id, after)
        for chunk in page.events:
            print(json.dumps(chunk.as_event(), ensure_ascii=False))
        if page.done or not page.events:
            return
        after = page.last_seq


def runs_table(runs: Sequence[Any]) -> Table:
    table = Table("status", "agent", "conversation", "created", "tokens in/out")
    table.columns.insert(0, Column("run", no_wrap=True))
    for run in runs:
        tokens = f"{run.usage.input_tokens}/{run.usage.output_tokens}" if run.usage else ""
        table.add_row(run.run_id, run.status, run.agent_id, run.conversation_id or "", run.created_at or "", tokens)
    return table


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
