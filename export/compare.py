"""Backend-to-backend comparison through Polygraphy's runners and comparator: PyTorch (the module
definitions in models/), ONNX Runtime (FP32 and the FP16/INT8 variants, on CPU) and, where
TensorRT is installed, TensorRT engines. One data loader of real feeds, one comparator, one verdict
per output, so "does the engine match the model" is asked the same way everywhere.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
from polygraphy.common import TensorMetadata
from polygraphy.comparator import Comparator, CompareFunc


class TorchRunner(BaseRunner):
    """A PyTorch module as a Polygraphy runner on any device (Polygraphy's own PytRunner is CUDA-only)."""

    def __init__(self, module: torch.nn.Module, inputs: dict[str, tuple[int, ...]], outputs: list[str],
                 device: str = "cpu", name: str | None = None):
        """`inputs`: name -> shape, in the module's argument order."""
        super().__init__(name=name, prefix="torch-runner")
        self.module, self.inputs, self.output_names, self.device = module.eval(), dict(inputs), outputs, device

    def activate_impl(self):
        self.module.to(self.device)

    def get_input_metadata_impl(self):
        meta = TensorMetadata()
        for name, shape in self.inputs.items():
            meta.add(name, dtype=np.float32, shape=tuple(shape))
        return meta

    def infer_impl(self, feed_dict):
        start = time.perf_counter()
        with torch.no_grad():
            out = self.module(*(torch.as_tensor(np.asarray(feed_dict[n])).to(self.device) for n in self.inputs))
        self.inference_time = time.perf_counter() - start
        out = out if isinstance(out, (tuple, list)) else (out,)
        return OrderedDict((n, o.float().cpu().numpy()) for n, o in zip(self.output_names, out) if o is not None)

    def deactivate_impl(self):
        pass


def ort_runner(path: Path, name: str | None = None) -> OnnxrtRunner:
    return OnnxrtRunner(SessionFromOnnx(Path(path).read_bytes(), providers=["CPUExecutionProvider"]),
                        name=name or Path(path).name)


def trt_runner(engine: Path, plugin: Path | None = None, name: str | None = None) -> Any:
    """TensorRT engine runner (only where TensorRT is installed; the plugin library loaded first)."""
    import ctypes

    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    if plugin is not None:
        ctypes.CDLL(str(plugin), mode=ctypes.RTLD_GLOBAL)
    return TrtRunner(EngineFromBytes(Path(engine).read_bytes()), name=name or Path(engine).name)


def compare_backends(runners: list, feeds: list[dict[str, np.ndarray]], atol: float, rtol: float = 0.0,
                     ) -> tuple[bool, dict[str, float]]:
    """Run every runner on the same feeds; compare each against the first. Returns (all within
    atol + rtol*|ref|, largest absolute error per output over all runners and feeds)."""
    results = Comparator.run(runners, data_loader=feeds)
    verdict = Comparator.compare_accuracy(results, compare_func=CompareFunc.simple(atol=atol, rtol=rtol))
    worst: dict[str, float] = {}
    (ref_name, ref_runs), *others = list(results.items())
    for _, runs in others:
        for ref_out, out in zip(ref_runs, runs):
            for key in ref_out.keys():
                if key in out.keys():
                    e = float(np.abs(np.asarray(ref_out[key], np.float64) - np.asarray(out[key], np.float64)).max())
                    worst[key] = max(worst.get(key, 0.0), e)
    return bool(verdict), worst
