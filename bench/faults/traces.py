"""What a client saw of one run: every event it received, when, on which connection, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Received:
    seq: int
    event: str
    """`data` or `end`"""
    data: dict[str, Any]
    at: float
    """epoch seconds, when the client parsed it"""
    connection: int
    """which stream connection of this run carried it (1, 2, …)"""


@dataclass
class RunTrace:
    task: str
    run_id: str | None = None
    stream_url: str | None = None
    started_at: float = 0.0
    received: list[Received] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)
    """Everything a client would see as an error: a non-2xx answer, a broken connection it did not
    cause, an `error` chunk."""
    connections: int = 0
    cuts: int = 0
    """Connections the client dropped on purpose and resumed from (live resume cycles)."""
    replays: int = 0
    """Re-reads of a finished run from a random point (resume cycles after the end)."""
    replay_problems: list[str] = field(default_factory=list)
    notices: list[tuple[str, float]] = field(default_factory=list)
    """Status notices the stream sent outside the log (`recovering`), with their arrival times."""
    ended_at: float | None = None
    hung: bool = False
    """No event for the hang timeout and no `end`: the client gave up."""

    @property
    def last_seq(self) -> int:
        """The id EventSource would send back: the last event's, as received."""
        return self.received[-1].seq if self.received else 0

    @property
    def last_event_at(self) -> float:
        return self.received[-1].at if self.received else self.started_at

    @property
    def text(self) -> str:
        """The text as a client that appends every text chunk it receives would show it."""
        return "".join(r.data.get("text", "") for r in self.received if r.data.get("type") == "text")

    def first_arrival(self, seq: int) -> float | None:
        return next((r.at for r in self.received if r.seq == seq), None)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task": self.task,
            "events": len(self.received),
            "last_seq": self.last_seq,
            "connections": self.connections,
            "cuts": self.cuts,
            "replays": self.replays,
            "client_errors": self.client_errors[:10],
            "replay_problems": self.replay_problems[:10],
            "notices": [phase for phase, _ in self.notices],
            "hung": self.hung,
            "seconds": round((self.ended_at or self.last_event_at) - self.started_at, 2),
        }


def log_text(log: list[dict[str, Any]]) -> str:
    return "".join(e["data"].get("text", "") for e in log if e["data"].get("type") == "text")
