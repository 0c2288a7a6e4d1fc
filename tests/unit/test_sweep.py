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


def test_a_running_run_whose_worker_and_message_are_gone_gets_a_new_message_and_a_live_one_does_not():
    from runwire.adapters.memory import InMemoryRunQueue
    from runwire.core.lease import LeasePolicy, LostMessageSweeper
    from runwire.core.models import Lease, RunMessage, RunRecord, RunRequest

    clock = FakeClock()
    store, queue = InMemoryRunStore(clock), InMemoryRunQueue()
    policy = LeasePolicy(lease_seconds=10, message_visibility_seconds=20)
    for run_id, lease_for in (("run_orphan", 10.0), ("run_busy", 1000.0)):
        store.create_run(RunRecord(run_id=run_id, org_id="acme", user_id="u", agent_id="ag_chat", status=RunStatus.QUEUED,
                                   request=RunRequest(task="t"), created_at=clock(), expires_at=int(clock()) + 3600))
        store.claim("acme", run_id, lease=Lease(run_id, clock() + lease_for), now=clock(), expires_at=int(clock()) + 3600)
    sweeper = LostMessageSweeper(store, queue, clock, policy, horizon_seconds=3600)

    clock.now += 10 + 20  # lapsed, but its message may still be on its way back
    assert sweeper.sweep() == 0 and queue.messages == []
    clock.now += 30
    assert sweeper.sweep() == 1
    assert queue.messages == [RunMessage(run_id="run_orphan", org_id="acme")]
