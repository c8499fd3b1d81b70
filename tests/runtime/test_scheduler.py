"""The frame scheduler's ordering and device dependencies (checked on HostOps' log), and the
motion-ahead thread."""
from __future__ import annotations

import time

import numpy as np
import pytest

from talkrt.runtime.scheduler import FrameScheduler, HostOps, ahead


def _scheduler(ops, slots, log):
    def render(row, slot, stream):
        slot.device[...] = row * 2.0  # "device" work
        log.append(("render", int(row), slot.index))
        return int(row)

    def copy(slot, stream):
        slot.host[...] = slot.device

    def finish(slot):
        log.append(("finish", slot.meta, slot.index))
        return slot.host.copy() + 1.0

    return FrameScheduler(ops, render, copy, finish, lambda i: (np.zeros(3), np.zeros(3)), slots=slots)


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_frames_in_order_and_equal_to_sequential(slots):
    rows = np.arange(7, dtype=np.float64)
    log = []
    out = list(_scheduler(HostOps(), slots, log).run(rows))
    assert [o[0] for o in out] == [r * 2.0 + 1.0 for r in rows]
    # with N slots, frame i is finished only after frame i+N-1 was enqueued (N frames in flight)
    order = [(k, i) for k, i, _ in log]
    for i in range(len(rows) - slots + 1):
        assert order.index(("render", i + slots - 1)) < order.index(("finish", i))


def test_device_dependencies():
    ops = HostOps()
    sched = _scheduler(ops, 2, [])
    list(sched.run(np.arange(4, dtype=np.float64)))
    rs, cs = sched.render_stream, sched.copy_stream
    slot0 = sched._slots[0]
    log = ops.log
    # the copy stream waits for each render before copying
    assert log[:3] == [("record", slot0.rendered, rs), ("wait", cs, slot0.rendered), ("record", slot0.copied, cs)]
    # before slot 0 is rendered into again: the host takes frame 0 out, the render stream waits for its copy
    reuse = log.index(("wait", rs, slot0.copied))
    assert log[reuse - 1] == ("host_wait", slot0.copied)
    assert log.count(("host_wait", slot0.copied)) == 2 and len([e for e in log if e[0] == "host_wait"]) == 4


def test_one_stream_keeps_copies_on_the_render_stream():
    ops = HostOps()
    sched = FrameScheduler(ops, lambda r, s, st: None, lambda s, st: None, lambda s: s.index,
                           lambda i: (None, None), slots=2, streams=1)
    assert list(sched.run(range(3))) == [0, 1, 0]
    assert sched.copy_stream == sched.render_stream
    streams_used = [e[2] if e[0] == "record" else e[1] for e in ops.log if e[0] in ("record", "wait")]
    assert streams_used and set(streams_used) == {sched.render_stream}


def test_ahead_runs_producer_on_a_thread():
    seen = []

    def produce():
        for i in range(5):
            seen.append(i)
            yield i

    assert list(ahead(produce(), depth=2)) == list(range(5))


def test_ahead_reraises_and_stops_early():
    def broken():
        yield 1
        raise RuntimeError("motion model failed")

    it = ahead(broken())
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="motion model failed"):
        next(it)

    def endless():
        i = 0
        while True:
            yield i
            i += 1

    t = time.perf_counter()
    gen = ahead(endless(), depth=1)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    assert time.perf_counter() - t < 2.0
