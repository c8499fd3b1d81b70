"""TrtEngine's bookkeeping against a stand-in CUDA runtime and TensorRT engine (TensorRT cannot be
installed here): W's output stays on the device and G reads it there, after waiting on W's event."""
from __future__ import annotations

import ctypes
from types import SimpleNamespace

import numpy as np

from talkrt.runtime.backends import trt as trt_backend


class FakeRuntime:
    """cuda-python's (err, value) idiom over host memory; logs what a GPU would be asked to do."""

    cudaStreamNonBlocking = 1
    cudaEventDefault, cudaEventDisableTiming = 0, 2
    cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice="H2D", cudaMemcpyDeviceToHost="D2H")

    def __init__(self):
        self.log, self.memory, self.n = [], {}, 0

    def _handle(self, kind):
        self.n += 1
        return 0, f"{kind}{self.n}"

    def cudaStreamCreateWithFlags(self, flags):
        return self._handle("stream")

    def cudaEventCreateWithFlags(self, flags):
        return self._handle("event")

    def _alloc(self, n, kind):
        buf = np.zeros(n, np.uint8)
        self.memory[buf.ctypes.data] = (buf, kind)
        return 0, buf.ctypes.data

    def cudaMallocHost(self, n):
        return self._alloc(n, "host")

    def cudaMalloc(self, n):
        return self._alloc(n, "device")

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        ctypes.memmove(dst, src, n)
        self.log.append(("copy", kind, stream, dst))
        return (0,)

    def cudaEventRecord(self, event, stream):
        self.log.append(("record", event, stream))
        return (0,)

    def cudaStreamWaitEvent(self, stream, event, flags):
        self.log.append(("wait", stream, event))
        return (0,)

    def cudaStreamSynchronize(self, stream):
        self.log.append(("sync", stream))
        return (0,)


class FakeContext:
    def __init__(self, engine):
        self.engine, self.shapes, self.addr = engine, {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)

    def get_tensor_shape(self, name):
        return self.shapes[self.engine.input]

    def set_tensor_address(self, name, ptr):
        self.addr[name] = ptr

    def execute_async_v3(self, stream):
        shape = self.shapes[self.engine.input]
        n = int(np.prod(shape))
        view = lambda ptr: np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), (n,))
        view(self.addr[self.engine.output])[:] = self.engine.fn(view(self.addr[self.engine.input]))
        return True


class FakeEngine:
    def __init__(self, input, output, fn):
        self.input, self.output, self.fn = input, output, fn
        self.num_io_tensors = 2

    def get_tensor_name(self, i):
        return (self.input, self.output)[i]

    def get_tensor_mode(self, name):
        return "in" if name == self.input else "out"

    def get_tensor_shape(self, name):
        return (1, -1)

    def get_tensor_dtype(self, name):
        return "float32"

    def create_execution_context(self):
        return FakeContext(self)


def test_warp_output_stays_on_the_device_for_decode(monkeypatch, tmp_path):
    rt = FakeRuntime()
    monkeypatch.setattr(trt_backend, "cudart", lambda: rt)
    fake_trt = SimpleNamespace(TensorIOMode=SimpleNamespace(INPUT="in"), nptype=lambda d: np.float32)
    engines = {"W": FakeEngine("feature", "warped", lambda x: 2 * x), "G": FakeEngine("warped", "image", lambda x: x + 1)}
    runtime = SimpleNamespace(deserialize_cuda_engine=lambda data: engines[data.decode()])
    for k in engines:
        (tmp_path / k).write_text(k)
    w = trt_backend.TrtEngine(tmp_path / "W", fake_trt, runtime)
    g = trt_backend.TrtEngine(tmp_path / "G", fake_trt, runtime)
    w.keep_on_device.add("warped")
    x = np.arange(6, dtype=np.float32).reshape(1, 6)
    warped = w.run({"feature": x})["warped"]
    assert isinstance(warped, trt_backend.DeviceTensor) and warped.shape == (1, 6)
    assert rt.memory[warped.ptr][1] == "device"
    w_log = list(rt.log)
    assert not any(e[0] == "sync" for e in w_log)  # W does not wait for the device
    assert not any(e[0] == "copy" and e[1] == "D2H" for e in w_log)  # nor copy its volume out
    image = g.run({"warped": warped})["image"]
    np.testing.assert_array_equal(image, 2 * x + 1)
    g_log = rt.log[len(w_log):]
    assert ("wait", g.stream.handle, warped.ready.handle) in g_log  # G's stream waits for W's
    assert not any(e[0] == "copy" and e[1] == "H2D" for e in g_log)  # the volume never went through the host
    assert g_log[-1] == ("sync", g.stream.handle)
