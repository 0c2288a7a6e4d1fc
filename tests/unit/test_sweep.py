"""The sweep ends runs whose client never answered, and is never held up by runs already gone."""

from __future__ import annotations

from runwire.adapters.memory import InMemoryRunStore
from runwire.core.actions import WaitSweeper
from runwire.core.models import RunStatus

from .test_actions import LOCATION, FakeClock, suspend_new_run

ONE_HOUR = 3600


def test_index_entries_of_runs_already_gone_do_not_crowd_out_a_live_overdue_run():
    clock = FakeClock()
    store = InMemoryRunStore(clock)
    gone = suspend_new_run(store, clock, LOCATION)  # waits until +1 h; readable until +5000 s
    clock.now += 4000
    live = suspend_new_run(store, clock, LOCATION)
    clock.now += ONE_HOUR + 1  # both deadlines passed; `gone` is past its TTL but still listed first
    assert store.get_run("acme", gone.run_id) is None
    assert store.overdue_waiting_runs(now=clock(), limit=1) == [("acme", gone.run_id)]

    unbounded = WaitSweeper(store, clock, batch=1)
    assert unbounded.sweep() == 0, "without a horizon the dead entry blocks the batch"

    bounded = WaitSweeper(store, clock, horizon_seconds=5000 - ONE_HOUR, batch=1)
    assert bounded.sweep() == 1
    assert store.get_run("acme", live.run_id).status is RunStatus.EXPIRED
