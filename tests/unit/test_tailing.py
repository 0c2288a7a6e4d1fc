"""The reader's polling schedule: timed to the writer while chunks flow, brisk at startup,
backing off to at most two queries a second while idle."""

import asyncio

import pytest

from runwire.core.models import EndChunk, RunStatus, StoredChunk, TextChunk
from runwire.core.tailing import KeepAlive, Liveness, PollPolicy, tail_chunks

POLICY = PollPolicy(write_interval=0.1, align_margin=0.006, retry_interval=0.01, min_interval=0.02,
                    idle_interval=0.5, ping_interval=15.0, liveness_interval=30.0)


def test_after_a_chunk_the_next_poll_is_just_after_the_next_write_can_land():
    wait = POLICY.next_wait(now=10.03, last_written_at=10.0, idle_since=10.03, misses=0)
    assert wait == pytest.approx(0.076)


def test_a_late_write_is_retried_soon_with_doubling_waits():
    waits = [POLICY.next_wait(now=10.11, last_written_at=10.0, idle_since=10.03, misses=m)
             for m in (1, 2, 3, 4, 5)]
    assert waits == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1])


def test_idle_waits_half_the_idle_time_from_brisk_to_two_a_second():
    assert POLICY.next_wait(now=0.01, last_written_at=None, idle_since=0.0, misses=1) == 0.02
    assert POLICY.next_wait(now=0.3, last_written_at=None, idle_since=0.0, misses=5) == pytest.approx(0.15)
    assert POLICY.next_wait(now=1.0, last_written_at=None, idle_since=0.0, misses=9) == 0.5
    assert POLICY.next_wait(now=9.0, last_written_at=None, idle_since=0.0, misses=25) == 0.5


class Simulation:
    """A fake clock and store: chunks become readable at given times."""

    def __init__(self, chunks: list[tuple[float, StoredChunk]]) -> None:
        self.now = 0.0
        self.chunks = chunks
        self.reads: list[float] = []

    async def read(self, after: int) -> list[StoredChunk]:
        self.reads.append(self.now)
        return [c for t, c in self.chunks if t <= self.now and c.seq > after]

    async def alive(self, after: int) -> Liveness:
        return Liveness.ALIVE

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def run(self) -> list:
        async def collect():
            return [item async for item in tail_chunks(self.read, self.alive, after=0, policy=POLICY,
                                                       clock=lambda: self.now, sleep=self.sleep)]
        return asyncio.run(collect())


def stored(seq: int, at: float, end: bool = False) -> tuple[float, StoredChunk]:
    chunk = EndChunk(status=RunStatus.SUCCEEDED) if end else TextChunk(text=str(seq))
    return at + 0.003, StoredChunk(seq=seq, chunk=chunk, written_at=at)  # readable 3 ms after the write


def test_a_steady_stream_costs_about_one_query_per_write_and_little_lag():
    writes = [stored(n, 0.05 + 0.1 * (n - 1)) for n in range(1, 21)] + [stored(21, 2.06, end=True)]
    sim = Simulation(writes)
    items = sim.run()
    assert [i.seq for i in items] == list(range(1, 22))
    flowing = [t for t in sim.reads if 0.05 < t < 2.0]
    assert len(flowing) <= 25 * 2.0
    # every chunk is seen within 15 ms of becoming readable
    seen_at = {}
    for t in sim.reads:
        for ready, c in writes:
            if ready <= t and c.seq not in seen_at:
                seen_at[c.seq] = t
    assert max(seen_at[c.seq] - ready for ready, c in writes) < 0.015


def test_an_idle_run_costs_at_most_two_queries_a_second_after_its_first_second():
    sim = Simulation([stored(1, 20.0, end=True)])
    items = sim.run()
    assert len([t for t in sim.reads if 1.0 <= t < 15.0]) <= 2 * 14 + 1
    assert len([t for t in sim.reads if t < 1.0]) <= 12
    assert sum(isinstance(i, KeepAlive) for i in items) == 1  # pings after 15 s without output


def test_the_margin_settles_near_the_stores_write_to_visible_latency():
    def lag_with_visibility(delay):
        writes = [(0.05 + 0.1 * (n - 1) + delay, StoredChunk(seq=n, chunk=TextChunk(text=str(n)), written_at=0.05 + 0.1 * (n - 1)))
                  for n in range(1, 60)]
        writes.append((6.0, StoredChunk(seq=60, chunk=EndChunk(status=RunStatus.SUCCEEDED), written_at=6.0)))
        sim = Simulation(writes)
        sim.run()
        late = []
        for ready, _ in writes[30:-1]:  # after the margin has settled
            first_read = min(t for t in sim.reads if t >= ready)
            late.append(first_read - ready)
        queries = len([t for t in sim.reads if 0.05 < t < 5.9]) / 5.85
        return sorted(late)[len(late) // 2], queries

    for visibility in (0.002, 0.012):  # moto-like and DynamoDB-like
        median_late, queries_per_second = lag_with_visibility(visibility)
        assert median_late < 0.004
        assert queries_per_second <= 25


def test_a_reader_is_told_once_when_the_runs_worker_is_gone_and_reads_on_when_another_carries_it_on():
    from runwire.core.tailing import Recovering

    class Lapsed(Simulation):
        async def alive(self, after: int) -> Liveness:
            return Liveness.RECOVERING if 1.0 <= self.now < 100.0 else Liveness.ALIVE

    # Liveness is asked every 30 s without output: at 30, 60 and 90 s the run is between workers.
    sim = Lapsed([stored(1, 0.5), stored(2, 101.0), stored(3, 101.2, end=True)])
    items = [i for i in sim.run() if not isinstance(i, KeepAlive)]
    assert [type(i).__name__ if isinstance(i, Recovering) else i.seq for i in items] == [1, "Recovering", 2, 3]
