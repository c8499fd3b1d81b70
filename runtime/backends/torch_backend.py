"""The `torch` backend: stage modules on a CUDA GPU in eager PyTorch, with talkrt's Triton kernels
and CUDA graphs; the GPU path where TensorRT is absent (DESIGN.md, backends).

The runtime does not import `talkrt.export` (where the module definitions live): whoever embeds
the runtime hands it modules (benchmarks/gpu_check.py builds them from models/). What lives
here is what every stage needs on a GPU: precision, a CUDA graph per input shape with static
buffers, the stream/event operations the frame scheduler runs on, and pinned host buffers.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from talkrt.runtime.errors import TalkrtError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


class TorchStage:
    """One stage module, callable with tensors; replays a captured CUDA graph when asked and the
    input shapes match the capture (re-captured when they change).

    With graphs on, the returned tensors are the graph's static outputs: valid until the next call."""

    def __init__(self, module: torch.nn.Module, precision: str = "fp32", device: str | torch.device = "cuda",
                 cuda_graphs: bool = False, name: str = "stage", warmup: int = 2):
        if precision not in DTYPES:
            raise TalkrtError(f"stage {name}", f"torch backend runs fp32 or fp16, not {precision!r}")
        self.name, self.device, self.dtype = name, torch.device(device), DTYPES[precision]
        if cuda_graphs and self.device.type != "cuda":
            raise TalkrtError(f"stage {name}", "CUDA graphs need a CUDA device")
        self.module = module.to(self.device, self.dtype).eval()
        self.cuda_graphs, self.warmup = cuda_graphs, warmup
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_in: list[torch.Tensor] = []
        self._static_out: Any = None
        self._key: tuple | None = None

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, self.dtype if x.is_floating_point() else x.dtype, non_blocking=True)

    @torch.inference_mode()
    def __call__(self, *inputs: torch.Tensor) -> Any:
        if not self.cuda_graphs:
            return self.module(*(self._cast(x) for x in inputs))
        key = tuple((tuple(x.shape), x.dtype) for x in inputs)
        if self._graph is None or key != self._key:
            self._capture(inputs, key)
        for dst, src in zip(self._static_in, inputs):
            dst.copy_(src, non_blocking=True)
        self._graph.replay()
        return self._static_out

    def _capture(self, inputs: tuple[torch.Tensor, ...], key: tuple) -> None:
        self._static_in = [self._cast(x).clone() for x in inputs]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up off the capture (allocator, Triton autotune, cuDNN)
            for _ in range(self.warmup):
                self.module(*self._static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._static_out = self.module(*self._static_in)
        self._graph, self._key = graph, key


class TorchCudaOps:
    """The frame scheduler's device operations on CUDA streams and events."""

    def __init__(self, device: str | torch.device = "cuda"):
        self.device = torch.device(device)

    def stream(self) -> torch.cuda.Stream:
        return torch.cuda.Stream(self.device)

    def event(self) -> torch.cuda.Event:
        return torch.cuda.Event()

    def record(self, event: torch.cuda.Event, stream: torch.cuda.Stream) -> None:
        event.record(stream)

    def wait(self, stream: torch.cuda.Stream, event: torch.cuda.Event) -> None:
        stream.wait_event(event)

    def host_wait(self, event: torch.cuda.Event) -> None:
        event.synchronize()


def pinned_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A page-locked host tensor (plain memory where there is no CUDA, so CPU tests run)."""
    return torch.empty(shape, dtype=dtype, pin_memory=torch.cuda.is_available())


def on_stream(stream: Any, fn: Callable[[], Any]) -> Any:
    """Run `fn` with `stream` current (CUDA) or directly (host ops' string streams)."""
    if isinstance(stream, torch.cuda.Stream):
        with torch.cuda.stream(stream):
            return fn()
    return fn()


def cuda_device_name(index: int = 0) -> str:
    if not torch.cuda.is_available():
        raise TalkrtError("backend torch", "no CUDA device is visible")
    p = torch.cuda.get_device_properties(index)
    return f"{p.name} (sm_{p.major}{p.minor}, {p.total_memory / 2**30:.0f} GiB)"
