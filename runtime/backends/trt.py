"""The `trt` backend: TensorRT engines built by export/trt_build.py, run with the name-based tensor
API and `execute_async_v3` on a cuda-python stream (TensorRT 10.x and 11.x).

Loading checks the engine folder's manifest against this machine and the profile first
(runtime/manifest.py) and loads the GridSample3D plugin library the engines need. Buffers (pinned
host + device) are allocated once per shape; with `cuda_graphs` the enqueue is captured after one
warm-up run and replayed while shapes stay the same.
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkrt.runtime.backends.cuda import Event, HostDeviceBuffer, Stream, check, cudart
from talkrt.runtime.engine import TensorSpec
from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.manifest import EngineManifest, check_manifest
from talkrt.runtime.profiles import profile_hash

PLUGIN_LIBRARY = "libtalkrt_trt_plugin.so"


def _tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError:
        raise TalkrtError("backend trt", "TensorRT is not installed (pip install tensorrt, or JetPack's python3-libnvinfer)") from None
    return tensorrt


def plugin_library(folder: Path) -> Path:
    """TALKRT_TRT_PLUGIN, else the copy the builder put beside the engines."""
    path = Path(os.environ.get("TALKRT_TRT_PLUGIN", Path(folder) / PLUGIN_LIBRARY))
    if not path.is_file():
        raise TalkrtError(path, "GridSample3D plugin library is missing (cmake --build build, then set TALKRT_TRT_PLUGIN)")
    return path


@dataclass(frozen=True)
class DeviceTensor:
    """An engine output left on the device for the next engine (W's volume for G): its address is
    valid until the producer runs again; `ready` is recorded on the producer's stream."""

    ptr: int
    shape: tuple
    dtype: np.dtype
    ready: Event


class TrtEngine:
    """One engine, one execution context, one stream. Outputs named in `keep_on_device` are returned
    as DeviceTensor (no copy, no sync); a DeviceTensor input is bound by address after its stream
    waits on the producer's event."""

    def __init__(self, path: Path, trt: Any, runtime: Any, stream: Stream | None = None, cuda_graphs: bool = False):
        self.rt = cudart()
        self.engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise TalkrtError(path, "TensorRT could not deserialize the engine (see the log above)")
        self.context = self.engine.create_execution_context()
        self.stream = stream or Stream(self.rt)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = lambda n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        spec = lambda n: TensorSpec(n, tuple(self.engine.get_tensor_shape(n)), str(np.dtype(trt.nptype(self.engine.get_tensor_dtype(n)))))
        self.inputs = tuple(spec(n) for n in names if is_input(n))
        self.outputs = tuple(spec(n) for n in names if not is_input(n))
        self.buffers = {s.name: HostDeviceBuffer(self.rt, np.dtype(s.dtype)) for s in self.inputs + self.outputs}
        self.cuda_graphs = cuda_graphs
        self._graph_exec = None
        self._graph_shapes: tuple | None = None
        self.keep_on_device: set[str] = set()
        self._done = Event(self.rt)

    def _bind(self, feeds: dict) -> tuple:
        shapes, addresses = [], {}
        for s in self.inputs:
            x = feeds[s.name]
            if isinstance(x, DeviceTensor):
                self.stream.wait(x.ready)
                addresses[s.name] = x.ptr
            else:
                self.buffers[s.name].ensure(x.shape)[...] = x
            self.context.set_input_shape(s.name, x.shape)
            shapes.append((tuple(x.shape), addresses.get(s.name)))
        for s in self.outputs:
            self.buffers[s.name].ensure(tuple(self.context.get_tensor_shape(s.name)))
        for name, buf in self.buffers.items():
            self.context.set_tensor_address(name, addresses.get(name, buf.device_ptr))
        return tuple(shapes)

    def _enqueue(self, shapes: tuple) -> None:
        if not self.cuda_graphs:
            if not self.context.execute_async_v3(self.stream.handle):
                raise TalkrtError("trt", "execute_async_v3 failed")
            return
        if self._graph_exec is None or shapes != self._graph_shapes:
            self.context.execute_async_v3(self.stream.handle)  # warm-up before capture
            rt = self.rt
            check(rt.cudaStreamBeginCapture(self.stream.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal),
                  "cudaStreamBeginCapture")
            self.context.execute_async_v3(self.stream.handle)
            graph = check(rt.cudaStreamEndCapture(self.stream.handle), "cudaStreamEndCapture")
            self._graph_exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
            self._graph_shapes = shapes
        check(self.rt.cudaGraphLaunch(self._graph_exec, self.stream.handle), "cudaGraphLaunch")

    def run(self, feeds: dict) -> dict:
        shapes = self._bind(feeds)
        for s in self.inputs:
            if not isinstance(feeds[s.name], DeviceTensor):
                self.buffers[s.name].to_device(self.stream)
        self._enqueue(shapes)
        fetch = [s for s in self.outputs if s.name not in self.keep_on_device]
        for s in fetch:
            self.buffers[s.name].to_host(self.stream)
        out = {}
        if len(fetch) < len(self.outputs):
            self._done.record(self.stream)
            out = {s.name: DeviceTensor(self.buffers[s.name].device_ptr, self.buffers[s.name].host.shape,
                                        self.buffers[s.name].dtype, self._done)
                   for s in self.outputs if s.name in self.keep_on_device}
        if fetch:
            self.stream.synchronize()  # a finished frame leaves the device
        out.update({s.name: self.buffers[s.name].host.copy() for s in fetch})
        return out


def open_engines(folder: Path, profile: dict, onnx_folder: Path | None = None) -> dict[str, TrtEngine]:
    """Check the manifest, load the plugin, deserialize every engine; keyed by engine file stem."""
    trt = _tensorrt()
    rt = cudart()
    manifest = EngineManifest.load(folder)
    props = check(rt.cudaGetDeviceProperties(profile["engine"]["device"]), "cudaGetDeviceProperties")
    check_manifest(manifest, tensorrt_version=trt.__version__, compute_capability=f"{props.major}.{props.minor}",
                   profile=profile["name"], profile_hash=profile_hash(profile), folder=folder, onnx_folder=onnx_folder)
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")
    if any(e.plugins for e in manifest.engines):
        ctypes.CDLL(str(plugin_library(folder)), mode=ctypes.RTLD_GLOBAL)
    runtime = trt.Runtime(logger)
    if manifest.version_compatible:
        runtime.engine_host_code_allowed = True
    graphs = profile["runtime"]["cuda_graphs"]
    return {Path(e.engine).stem: TrtEngine(Path(folder) / e.engine, trt, runtime, cuda_graphs=graphs)
            for e in manifest.engines}


_OPEN: dict[Path, dict[str, TrtEngine]] = {}


def open_stage_engine(onnx_path: Path, profile_name: str) -> TrtEngine:
    """The engine built from `onnx_path` for `profile_name` (engine folders are opened once)."""
    from talkrt.runtime.profiles import load_profile

    folder = Path(onnx_path).parent / "engines" / Path(profile_name).stem
    if folder not in _OPEN:
        _OPEN[folder] = open_engines(folder, load_profile(profile_name), Path(onnx_path).parent)
    engines = _OPEN[folder]
    if Path(onnx_path).stem not in engines:
        raise TalkrtError(folder, f"has no engine for {Path(onnx_path).name} (built: {', '.join(sorted(engines))})")
    return engines[Path(onnx_path).stem]


__all__ = ["DeviceTensor", "TrtEngine", "open_engines", "open_stage_engine", "Event", "Stream"]
