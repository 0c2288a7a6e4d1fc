import pytest

from runwire.core.chunks import CoalescingPolicy, TextCoalescer


def test_first_delta_after_quiet_is_written_at_once():
    coalescer = TextCoalescer(CoalescingPolicy(window_seconds=0.1))
    assert coalescer.add("Hello", now=10.0) == "Hello"


def test_deltas_inside_the_window_are_batched_and_flushed_by_the_first_arrival_after_it():
    coalescer = TextCoalescer(CoalescingPolicy(window_seconds=0.1))
    coalescer.add("a", now=10.0)
    assert coalescer.add("b", now=10.02) is None
    assert coalescer.add("c", now=10.04) is None
    assert coalescer.add("d", now=10.1) == "bcd"  # the newest token waits nothing
    assert coalescer.deadline() is None


def test_a_pause_flushes_on_the_timer_half_a_window_after_the_window():
    coalescer = TextCoalescer(CoalescingPolicy(window_seconds=0.1))
    coalescer.add("a", now=10.0)
    coalescer.add("b", now=10.02)
    assert coalescer.deadline() == pytest.approx(10.15)
    assert coalescer.flush_due(10.14) is None
    assert coalescer.flush_due(10.15) == "b"


def test_size_cap_flushes_before_the_window():
    coalescer = TextCoalescer(CoalescingPolicy(window_seconds=10, max_chars=5))
    coalescer.add("x", now=0.0)
    assert coalescer.add("abc", now=0.001) is None
    assert coalescer.add("de", now=0.002) == "abcde"


def test_drain_returns_everything_buffered():
    coalescer = TextCoalescer(CoalescingPolicy(window_seconds=10))
    coalescer.add("x", now=0.0)
    coalescer.add("y", now=0.1)
    assert coalescer.drain(0.2) == "y"
    assert coalescer.drain(0.3) is None


def test_fifty_tokens_a_second_become_about_ten_writes_a_second():
    coalescer = TextCoalescer(CoalescingPolicy(window_seconds=0.1))
    writes = 0
    for i in range(500):  # 10 seconds of tokens, 20 ms apart
        now = i * 0.02
        if coalescer.flush_due(now):
            writes += 1
        if coalescer.add(f" t{i}", now):
            writes += 1
    assert writes <= 10 * 10 + 1
