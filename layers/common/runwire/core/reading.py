"""What a reader of a run may see: where it resumes, whether there is anything to stream, and
whether the run it follows is still alive.

Readers only ever read the log. A reader that finds the run waiting past its action deadline ends
it (through `RunService.get`), so a stream never hangs on a client that went away.
"""

from __future__ import annotations

from ..errors import InvalidRequestError, RunNotFoundError
from .models import Caller, RunRecord, StoredChunk
from .ports import Clock, RunStore
from .run_service import RunService
from .tailing import Liveness


def parse_resume_point(last_event_id: str | None, after: int | None) -> int:
    """`Last-Event-ID` (what EventSource sends on reconnect) wins over `?after=`."""
    if last_event_id is not None and last_event_id.strip() != "":
        try:
            value = int(last_event_id.strip())
        except ValueError:
            raise InvalidRequestError("Last-Event-ID must be the seq (an integer) of the last event received") from None
        if value < 0:
            raise InvalidRequestError("Last-Event-ID must not be negative")
        return value
    return after or 0


class RunReader:
    def __init__(self, runs: RunService, store: RunStore, clock: Clock) -> None:
        self._runs = runs
        self._store = store
        self._clock = clock

    def open(self, caller: Caller, run_id: str, *, after: int) -> RunRecord | None:
        """The run to stream from `after`, or None when it has finished and nothing is left after
        `after` (204: which also tells an EventSource to stop reconnecting)."""
        run = self._runs.get(caller, run_id)
        if run.status.is_terminal and not self._pending(caller, run_id, after):
            return None
        return run

    def read(self, caller: Caller, run_id: str, *, after: int) -> list[StoredChunk]:
        return self._store.read_chunks(caller.org_id, run_id, after=after)

    def liveness(self, caller: Caller, run_id: str, *, position: int) -> Liveness:
        """Whether a reader at `position` should keep waiting (the run still exists, and it is not
        finished with nothing after `position`: a resume point past the end), and whether the run
        is between workers (its worker's lease lapsed; another will take it over)."""
        try:
            run = self._runs.get(caller, run_id)
        except RunNotFoundError:
            return Liveness.GONE
        if run.status.is_terminal and not self._pending(caller, run_id, position):
            return Liveness.GONE
        return Liveness.RECOVERING if run.lease_lapsed(self._clock()) else Liveness.ALIVE

    def _pending(self, caller: Caller, run_id: str, after: int) -> bool:
        # Consistent: once the run reads as finished, its last chunks must read too.
        return bool(self._store.read_chunks(caller.org_id, run_id, after=after, limit=1, consistent=True))
