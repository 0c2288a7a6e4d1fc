"""Judging one run after it ended (or hung): what the client saw against the run's log.

The log is a fresh full read of the poll endpoint (`GET /v1/runs/{id}/events?after=0`). Per run:

- lost: ids of the log the client never received, and gaps in the log itself (ids run 1..N);
- duplicated: events the client received more than once, and chunks the log holds twice over
  (a second `tool_use` or `tool_result` for one call, a second `usage` or `end`);
- out of order: events that arrived after a later id had already arrived;
- mismatched: an event whose chunk differs from the log's, or text that differs from the reference
  (what one uninterrupted run of the same task produced on the same stack);
- outcome: completed (succeeded, one `usage`, one `end`), failed cleanly (failed / expired /
  cancelled, with its `error` chunk and one `end`), hung (no `end` within the hang timeout), or
  unclean (anything else: no `end` in the log, two of them, a gap).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .traces import RunTrace, log_text

FAILED_CLEANLY_STATUSES = {"failed", "expired", "cancelled"}


@dataclass
class Verdict:
    run_id: str | None
    task: str
    outcome: str
    status: str | None
    error_code: str | None
    attempts: int | None = None
    """How many workers took the run (GET /v1/runs/{id}'s `attempts`)."""
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    mismatched: int = 0
    client_errors: int = 0
    ends_received: int = 0
    ends_logged: int = 0
    text_whole: bool | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first_difference(seen: str, expected: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(seen, expected, strict=False)) if a != b), min(len(seen), len(expected)))
    return (f"text differs at char {at} (saw {len(seen)} chars, expected {len(expected)}): "
            f"saw …{seen[max(0, at - 30):at + 30]!r}, expected …{expected[max(0, at - 30):at + 30]!r}")


def _log_defects(log: list[dict[str, Any]], verdict: Verdict) -> None:
    seqs = [e["seq"] for e in log]
    if seqs and sorted(set(seqs)) != list(range(1, max(seqs) + 1)):
        missing = max(seqs) - len(set(seqs))
        verdict.lost += missing
        verdict.problems.append(f"the log has {missing} gap(s) in 1..{max(seqs)}")
    kinds = Counter(e["data"].get("type", e["event"]) for e in log)
    ends = sum(1 for e in log if e["event"] == "end")
    for name, count in (("end", ends), ("usage", kinds["usage"])):
        if count > 1:
            verdict.duplicated += count - 1
            verdict.problems.append(f"the log has {count} {name} events")
    for kind in ("tool_use", "tool_result"):
        ids = Counter(e["data"]["id"] for e in log if e["data"].get("type") == kind)
        repeated = sum(n - 1 for n in ids.values() if n > 1)
        if repeated:
            verdict.duplicated += repeated
            verdict.problems.append(f"the log repeats {repeated} {kind} chunk(s)")


def _client_defects(trace: RunTrace, log: list[dict[str, Any]], verdict: Verdict) -> None:
    by_seq = {e["seq"]: e for e in log}
    received = [r.seq for r in trace.received]
    verdict.duplicated += len(received) - len(set(received))
    highest = 0
    for seq in received:
        if seq < highest and received.count(seq) == 1:
            verdict.out_of_order += 1
        highest = max(highest, seq)
    never = sorted(set(by_seq) - set(received))
    if never:
        verdict.lost += len(never)
        verdict.problems.append(f"never received: {never[:10]}{'…' if len(never) > 10 else ''}")
    for r in trace.received:
        stored = by_seq.get(r.seq)
        if stored is not None and (stored["event"], stored["data"]) != (r.event, r.data):
            verdict.mismatched += 1
            verdict.problems.append(f"event {r.seq} differs from the log's")
    verdict.ends_received = sum(1 for r in trace.received if r.event == "end")
    verdict.ends_logged = sum(1 for e in log if e["event"] == "end")
    if verdict.ends_received != 1 and not trace.hung:
        verdict.problems.append(f"the client received {verdict.ends_received} end events")
    for problem in trace.replay_problems[:5]:
        verdict.problems.append(f"replay: {problem}")


def _outcome(trace: RunTrace, log: list[dict[str, Any]], verdict: Verdict) -> str:
    if trace.run_id is None:
        return "not_started"
    if trace.hung:
        return "hung"
    ends = [e for e in log if e["event"] == "end"]
    seqs = [e["seq"] for e in log]
    whole = bool(seqs) and seqs == list(range(1, len(seqs) + 1)) and len(ends) == 1 and log[-1]["event"] == "end"
    usages = sum(1 for e in log if e["data"].get("type") == "usage")
    errors = [e for e in log if e["data"].get("type") == "error"]
    if whole and verdict.status == "succeeded" and usages == 1 and not errors:
        return "completed"
    if whole and verdict.status in FAILED_CLEANLY_STATUSES and errors and usages <= 1:
        return "failed_cleanly"
    return "unclean"


def judge(trace: RunTrace, log: list[dict[str, Any]], status: dict[str, Any] | None,
          reference_text: str | None) -> Verdict:
    error = (status or {}).get("error") or {}
    verdict = Verdict(
        run_id=trace.run_id, task=trace.task, outcome="", status=(status or {}).get("status"),
        error_code=error.get("code"), attempts=(status or {}).get("attempts"), client_errors=len(trace.client_errors),
    )
    _log_defects(log, verdict)
    _client_defects(trace, log, verdict)
    if trace.text != log_text(log):
        verdict.mismatched += 1
        verdict.problems.append("client text ≠ log text: " + _first_difference(trace.text, log_text(log)))
    if reference_text is not None and verdict.status == "succeeded":
        verdict.text_whole = trace.text == reference_text
        if not verdict.text_whole:
            verdict.mismatched += 1
            verdict.problems.append("vs the reference run: " + _first_difference(trace.text, reference_text))
    verdict.outcome = _outcome(trace, log, verdict)
    if verdict.outcome == "unclean":
        verdict.problems.append(f"unclean end: status {verdict.status}, {sum(e['event'] == 'end' for e in log)} end(s)")
    return verdict
