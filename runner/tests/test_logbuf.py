import threading
import time

import pytest

from iac_runner.logbuf import LogBuffer


def test_tail_returns_last_lines_oldest_first():
    buf = LogBuffer(10)
    for i in range(5):
        buf.append("stdout", f"l{i}")
    assert [line.msg for line in buf.tail(2)] == ["l3", "l4"]
    assert [line.msg for line in buf.tail(0)] == ["l0", "l1", "l2", "l3", "l4"]
    assert [line.msg for line in buf.tail(50)] == ["l0", "l1", "l2", "l3", "l4"]


def test_ring_buffer_evicts_oldest_and_keeps_sequence():
    buf = LogBuffer(3)
    for i in range(7):
        buf.append("stderr", f"l{i}")
    lines = buf.tail()
    assert [line.msg for line in lines] == ["l4", "l5", "l6"]
    assert [line.seq for line in lines] == [5, 6, 7]
    assert buf.max_lines == 3


def test_after_skips_evicted_lines_for_slow_readers():
    buf = LogBuffer(2)
    for i in range(5):
        buf.append("stdout", f"l{i}")
    assert [line.msg for line in buf.after(1, timeout=0)] == ["l3", "l4"]


def test_after_blocks_until_a_line_arrives():
    buf = LogBuffer(10)
    _, seq = buf.snapshot()
    threading.Timer(0.1, lambda: buf.append("stdout", "late")).start()
    t0 = time.monotonic()
    lines = buf.after(seq, timeout=5)
    assert [line.msg for line in lines] == ["late"]
    assert time.monotonic() - t0 < 4


def test_after_times_out_empty_and_close_wakes_followers():
    buf = LogBuffer(10)
    assert buf.after(0, timeout=0.05) == []
    threading.Timer(0.1, buf.close).start()
    t0 = time.monotonic()
    assert buf.after(0, timeout=5) == []
    assert buf.closed
    assert time.monotonic() - t0 < 4


def test_snapshot_is_consistent_with_sequence():
    buf = LogBuffer(10)
    buf.append("stdout", "a")
    lines, seq = buf.snapshot(1)
    assert [line.msg for line in lines] == ["a"] and seq == 1


def test_rejects_empty_buffer():
    with pytest.raises(ValueError):
        LogBuffer(0)
