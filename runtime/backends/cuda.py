"""Thin cuda-python helpers for the `trt` backend: the (err, *results) calling idiom, streams,
events, device buffers and pinned host buffers allocated once and reused.

cuda-bindings >= 12.8 lives in `cuda.bindings.runtime`; older wheels (JetPack 6's 12.6 era) in
`cuda.cudart` (specs/toolchain.md section 5)."""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from talkrt.runtime.errors import TalkrtError


def cudart() -> Any:
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime  # type: ignore[no-redef]
        except ImportError:
            raise TalkrtError("backend trt", "needs cuda-python (pip install 'talkrt[gpu]')") from None
    return runtime


def check(result: Any, what: str) -> Any:
    """Unwrap cuda-python's (err, *values) tuples; raise a one-line error naming the call."""
    err, *values = result if isinstance(result, tuple) else (result,)
    code = int(getattr(err, "value", err))
    if code != 0:
        name = getattr(err, "name", str(code))
        raise TalkrtError(f"CUDA {what}", f"failed with {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class Stream:
    def __init__(self, rt: Any):
        self.rt = rt
        self.handle = check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    def synchronize(self) -> None:
        check(self.rt.cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def wait(self, event: "Event") -> None:
        check(self.rt.cudaStreamWaitEvent(self.handle, event.handle, 0), "cudaStreamWaitEvent")


class Event:
    def __init__(self, rt: Any, timing: bool = False):
        self.rt = rt
        flags = rt.cudaEventDefault if timing else rt.cudaEventDisableTiming
        self.handle = check(rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")

    def record(self, stream: Stream) -> None:
        check(self.rt.cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")

    def elapsed_ms(self, start: "Event") -> float:
        return float(check(self.rt.cudaEventElapsedTime(start.handle, self.handle), "cudaEventElapsedTime"))


class HostDeviceBuffer:
    """A pinned host array and a device allocation of the same size, grown only when too small."""

    def __init__(self, rt: Any, dtype: np.dtype):
        self.rt, self.dtype, self.nbytes = rt, np.dtype(dtype), 0
        self.host_ptr = self.device_ptr = 0
        self.host: np.ndarray = np.empty(0, self.dtype)

    def ensure(self, shape: tuple[int, ...]) -> np.ndarray:
        need = int(np.prod(shape)) * self.dtype.itemsize
        if need > self.nbytes:
            self.free()
            self.host_ptr = int(check(self.rt.cudaMallocHost(need), "cudaMallocHost"))
            self.device_ptr = int(check(self.rt.cudaMalloc(need), "cudaMalloc"))
            self.nbytes = need
        flat = np.ctypeslib.as_array(ctypes.cast(self.host_ptr, ctypes.POINTER(ctypes.c_uint8)), (self.nbytes,))
        self.host = flat[:need].view(self.dtype).reshape(shape)
        return self.host

    def to_device(self, stream: Stream) -> None:
        check(self.rt.cudaMemcpyAsync(self.device_ptr, self.host_ptr, self.host.nbytes,
                                      self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle), "cudaMemcpyAsync")

    def to_host(self, stream: Stream) -> None:
        check(self.rt.cudaMemcpyAsync(self.host_ptr, self.device_ptr, self.host.nbytes,
                                      self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle), "cudaMemcpyAsync")

    def free(self) -> None:
        if self.nbytes:
            check(self.rt.cudaFreeHost(self.host_ptr), "cudaFreeHost")
            check(self.rt.cudaFree(self.device_ptr), "cudaFree")
            self.nbytes = 0
