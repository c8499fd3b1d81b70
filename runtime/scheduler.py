"""The frame scheduler: stages on their own streams, double-buffered frame slots, motion generated
ahead on a host thread, frames finished (copied out, pasted, encoded) off the critical path.

    motion thread:   [audio_enc + motion, window 0] [window 1] [window 2] ...      (queue of rows)
    render stream:   [render 0 -> slot 0] [render 1 -> slot 1] [wait copy 0] [render 2 -> slot 0] ...
    copy stream:                 [wait render 0][D2H 0]  [wait render 1][D2H 1] ...
    host:                                          [finish 0]          [finish 1] ...

A slot is reused only after the copy of its previous frame has finished (an event, not a host
sync); the host waits only on the copy event of the frame it is about to hand out, and it hands
frames out in order. `Ops` abstracts the device: `TorchCudaOps` (runtime/backends/torch_backend.py)
uses CUDA streams and events; `HostOps` runs the same schedule synchronously on the CPU, which is
how the ordering logic is tested without a GPU.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol


class Ops(Protocol):
    """What the scheduler needs from a device."""

    def stream(self) -> Any: ...
    def event(self) -> Any: ...
    def record(self, event: Any, stream: Any) -> None: ...
    def wait(self, stream: Any, event: Any) -> None: ...     # stream waits for event (device side)
    def host_wait(self, event: Any) -> None: ...             # the host waits for event


class HostOps:
    """CPU: every call runs to completion, so streams and events carry no work; the log lets tests
    check that the schedule issues the waits a GPU needs."""

    def __init__(self):
        self.log: list[tuple] = []
        self._n = 0

    def _new(self, kind: str) -> str:
        self._n += 1
        return f"{kind}{self._n}"

    def stream(self) -> str:
        return self._new("stream")

    def event(self) -> str:
        return self._new("event")

    def record(self, event, stream) -> None:
        self.log.append(("record", event, stream))

    def wait(self, stream, event) -> None:
        self.log.append(("wait", stream, event))

    def host_wait(self, event) -> None:
        self.log.append(("host_wait", event))


@dataclass
class Slot:
    index: int
    device: Any          # the rendered frame's device buffer(s)
    host: Any            # its pinned host copy
    rendered: Any
    copied: Any
    frame: int = -1      # frame number it holds, -1 when free
    meta: Any = None     # per-frame host data handed to `finish` (e.g. displaced points)


@dataclass
class FrameScheduler:
    """Runs render -> copy -> finish for a sequence of motion rows with `slots` frames in flight.

    render(row, slot, stream) enqueues the device work for one frame into slot.device and returns
    host metadata; copy(slot, stream) enqueues slot.device -> slot.host; finish(slot) turns the host
    copy into an output frame (paste, mouth painting, ...) on the host."""

    ops: Ops
    render: Callable[[Any, Slot, Any], Any]
    copy: Callable[[Slot, Any], None]
    finish: Callable[[Slot], Any]
    buffers: Callable[[int], tuple[Any, Any]]   # slot index -> (device buffer, host buffer)
    slots: int = 2
    streams: int = 2                            # 1: copies share the render stream
    _slots: list[Slot] = field(default_factory=list, init=False)

    def __post_init__(self):
        if self.slots < 1 or self.streams < 1:
            raise ValueError("slots and streams must be at least 1")
        self.render_stream = self.ops.stream()
        self.copy_stream = self.ops.stream() if self.streams >= 2 else self.render_stream
        for i in range(self.slots):
            dev, host = self.buffers(i)
            self._slots.append(Slot(i, dev, host, self.ops.event(), self.ops.event()))

    def _finish(self, slot: Slot) -> Any:
        self.ops.host_wait(slot.copied)  # the only host sync: a finished frame leaving the device
        out = self.finish(slot)
        slot.frame = -1
        return out

    def run(self, rows: Iterable[Any]) -> Iterator[Any]:
        in_flight: list[Slot] = []
        for i, row in enumerate(rows):
            slot = self._slots[i % self.slots]
            if slot.frame >= 0:  # its previous frame must leave first, in order
                while in_flight and in_flight[0] is not slot:
                    yield self._finish(in_flight.pop(0))
                yield self._finish(in_flight.pop(0))
                self.ops.wait(self.render_stream, slot.copied)  # device: do not overwrite before the copy
            slot.meta = self.render(row, slot, self.render_stream)
            self.ops.record(slot.rendered, self.render_stream)
            self.ops.wait(self.copy_stream, slot.rendered)
            self.copy(slot, self.copy_stream)
            self.ops.record(slot.copied, self.copy_stream)
            slot.frame = i
            in_flight.append(slot)
        while in_flight:
            yield self._finish(in_flight.pop(0))


def ahead(produce: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Run a producer (audio encoding + motion, window by window) on a host thread, `depth` items
    ahead of the consumer; exceptions are re-raised in the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in produce:
                if not put(("item", item)):
                    return
            put(("end", done))
        except BaseException as exc:  # handed to the consumer
            put(("error", exc))

    thread = threading.Thread(target=work, name="talkrt-motion", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
