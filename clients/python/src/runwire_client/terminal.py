"""A run on a terminal, as `runwire run` and `runwire chat` show it.

The answer's text is rendered as Markdown while it streams (rich `Live`, showing the end of the
text that fits the screen, erased when the stretch ends), then printed once, whole: a `Live` taller
than the terminal repeats itself in the scrollback (rich issue #3263). Tool calls, results and
other steps are status lines between stretches of text; a run that waits for its client asks the
person (y/n for an approval, a JSON value for a client tool's output) and answers through the API,
and the same stream carries on; usage and how the run ended close it. What the model or a tool
wrote is stripped of control characters before it reaches the terminal.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape
from rich.prompt import Confirm, Prompt
from rich.segment import Segment

from .chunks import (
    AnyChunk,
    ApprovalAction,
    ClientToolAction,
    EndChunk,
    ErrorChunk,
    InterruptedChunk,
    RequiresActionChunk,
    StatusChunk,
    TextChunk,
    ToolResultChunk,
    ToolUseChunk,
    UsageChunk,
)
from .client import Runwire

DENIED_REASON = "denied at the command line"
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 but tab and line feed, DEL, and C1: ESC starts the sequences that move the cursor, retitle the
window or write the clipboard (OSC 52); CSI (0x9b) and OSC (0x9d) are their 8-bit forms."""


def printable(text: str) -> str:
    """`text` as it may reach the terminal: without control characters (newlines and tabs kept)."""
    return CONTROL_CHARACTERS.sub("", text)


def shown(text: str) -> str:
    """Text from the run (a tool's name, an error message) for rich markup: printable and escaped."""
    return escape(printable(text))


def brief(value: Any, limit: int = 120) -> str:
    """A value on one line, cut to `limit`, escaped for rich markup (JSON's `[…]` is not a style)."""
    text = printable(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


class Tail:
    """The last lines of a renderable that fit on the screen (one kept for the cursor)."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
        visible = lines[-max(1, console.size.height - 1):]
        for number, line in enumerate(visible):
            if number:
                yield Segment.line()
            yield from line


class AnswerView:
    """What the person sees of one run: text as Markdown, the rest as lines."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.text = ""
        self.live: Live | None = None
        self.usage: UsageChunk | None = None
        self.ended: EndChunk | None = None

    def show(self, chunk: AnyChunk) -> None:
        if isinstance(chunk, TextChunk):
            self._write(chunk.text)
            return
        line = self._line_for(chunk)
        if line is not None:
            self.pause()
            self.console.print(line, highlight=False)

    def _write(self, text: str) -> None:
        self.text += printable(text)
        if self.live is None:
            self.live = Live(Tail(Markdown(self.text)), console=self.console, refresh_per_second=8, transient=True)
            self.live.start()
        else:
            self.live.update(Tail(Markdown(self.text)))

    def pause(self) -> None:
        """End the current stretch of text: the live view is erased and the whole text printed once."""
        if self.live is not None:
            self.live.stop()
            self.live = None
            self.console.print(Markdown(self.text))
            self.text = ""

    def _line_for(self, chunk: AnyChunk) -> str | None:
        if isinstance(chunk, ToolUseChunk):
            who = " [dim](your client runs it)[/]" if chunk.executor == "client" else ""
            return f"[cyan]⚙ {shown(chunk.name)}[/] {brief(chunk.input)}{who}"
        if isinstance(chunk, ToolResultChunk):
            mark = "[red]✗[/]" if chunk.is_error else "[green]✓[/]"
            return f"{mark} result {brief(chunk.output)}"
        if isinstance(chunk, InterruptedChunk):
            return f"[yellow]… the model call was interrupted ({shown(chunk.reason)}); carrying on[/]"
        if isinstance(chunk, StatusChunk) and chunk.phase == "recovering":
            return "[yellow]… recovering: the run's worker stopped and another takes it over[/]"
        if isinstance(chunk, RequiresActionChunk):
            return "[magenta]⏸ the run waits for you[/]"
        if isinstance(chunk, ErrorChunk):
            return f"[red]error {shown(chunk.code)}: {shown(chunk.message)}[/]"
        if isinstance(chunk, UsageChunk):
            self.usage = chunk
            return None
        if isinstance(chunk, EndChunk):
            self.ended = chunk
            return self._closing_line(chunk)
        return None  # step_end, and chunk types this client does not know

    def _closing_line(self, end: EndChunk) -> str:
        usage = ""
        if self.usage is not None:
            usage = (f" · usage: {self.usage.input_tokens} input + {self.usage.output_tokens} output tokens"
                     f" ({shown(self.usage.model)})")
        colour = "green" if end.status == "succeeded" else "red"
        return f"[{colour}]■ run {shown(end.status or '')}[/]{usage}"


def answer_waiting_run(client: Runwire, run_id: str, chunk: RequiresActionChunk, console: Console) -> None:
    """Ask the person about each action the run still waits for, and send the answers."""
    pending = client.runs.get(run_id).pending_actions or []
    still_pending = {getattr(action, "tool_call_id", None) for action in pending}
    approvals: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for action in chunk.actions:
        if getattr(action, "tool_call_id", None) not in still_pending:
            continue  # answered already (e.g. a stream read again from its start)
        if isinstance(action, ApprovalAction):
            approved = Confirm.ask(f"Allow [cyan]{shown(action.name)}[/] {brief(action.input)}?", console=console)
            approvals.append({"approval_id": action.approval_id, "approved": approved,
                              **({} if approved else {"reason": DENIED_REASON})})
        elif isinstance(action, ClientToolAction):
            outputs.append({"tool_call_id": action.tool_call_id, "output": ask_json(console, action)})
        else:
            console.print(f"[yellow]the run waits for a '{shown(action.kind)}' this client cannot answer[/]")
    if approvals:
        client.runs.submit_approvals(run_id, approvals)
    if outputs:
        client.runs.submit_tool_outputs(run_id, outputs)


def ask_json(console: Console, action: ClientToolAction) -> Any:
    while True:
        answer = Prompt.ask(f"Output of [cyan]{shown(action.name)}[/] {brief(action.input)} as JSON", console=console)
        try:
            return json.loads(answer)
        except ValueError:
            console.print('[red]not JSON[/]: type e.g. {"city": "Lisbon"} or "a string"')
