"""The fault suite's table (printed, and as Markdown) and its JSON record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .scenario import ScenarioResult

COLUMNS = ("scenario", "runs", "completed", "failed cleanly", "hung", "lost", "duplicated", "out of order",
           "text/chunk ≠", "client errors", "recovery p50 / p99", "misses")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}s"


def row(result: ScenarioResult) -> list[str]:
    if result.skipped:
        return [result.name, *["–"] * 10, "skipped"]
    recovery = "–" if not result.recovery_seconds else f"{_seconds(result.recovery_p50)} / {_seconds(result.recovery_p99)}"
    return [result.name, str(result.runs), str(result.completed), str(result.failed_cleanly), str(result.hung),
            str(result.lost), str(result.duplicated), str(result.out_of_order), str(result.mismatched),
            str(result.client_errors), recovery, "; ".join(result.misses()) or "none"]


def render_table(results: list[ScenarioResult]) -> str:
    rows = [list(COLUMNS), *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_notes(results: list[ScenarioResult]) -> str:
    return "\n".join(f"- {r.name}: {note}" for r in results for note in r.notes)


def render_model_outcomes(results: list[ScenarioResult]) -> str:
    outcomes = [o for r in results for o in r.details.get("outcomes", [])]
    if not outcomes:
        return ""
    lines = ["| model fault | expected | status | error | text whole | model requests | seconds | as expected |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for o in outcomes:
        lines.append(f"| {o['fault']} | {o['expected']} | {o['status']} | {o['error_code'] or '–'} | "
                     f"{'–' if o['text_whole'] is None else o['text_whole']} | {o['model_requests']} | "
                     f"{o['seconds']} | {'yes' if o['as_expected'] else 'NO'} |")
    return "\n".join(lines)


def render_markdown(results: list[ScenarioResult], header: str) -> str:
    table = [f"| {' | '.join(COLUMNS)} |", f"|{' --- |' * len(COLUMNS)}"]
    table.extend(f"| {' | '.join(row(r))} |" for r in results)
    parts = [header, "\n".join(table), render_model_outcomes(results), render_notes(results)]
    return "\n\n".join(part for part in parts if part) + "\n"


def write_json(path: Path, results: list[ScenarioResult], meta: dict[str, Any]) -> None:
    payload = {**meta, "scenarios": [r.as_dict() for r in results]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
