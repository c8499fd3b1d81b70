"""Engines: one interface over the backends that run a stage's model.

`ort` (ONNX Runtime) is the default and runs everywhere; `trt` and `torch` live in their own
modules and are imported only when asked for, so the core needs numpy + onnxruntime alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from talkrt.runtime.errors import TalkrtError

MODEL_DIR = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple
    dtype: str


class Engine(Protocol):
    """A compiled stage model: named inputs in, named outputs out."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class OrtEngine:
    """ONNX Runtime on the CPU execution provider (CUDA EP where installed and asked for)."""

    def __init__(self, path: Path, threads: int = 0, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        import onnxruntime as ort

        if not Path(path).is_file():
            raise TalkrtError(path, "model file is missing (reinstall talkrt?)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise TalkrtError(path, f"cannot load ONNX model ({exc.__class__.__name__})") from exc
        self.inputs = tuple(TensorSpec(i.name, tuple(i.shape), i.type) for i in self.session.get_inputs())
        self.outputs = tuple(TensorSpec(o.name, tuple(o.shape), o.type) for o in self.session.get_outputs())
        self._out_names = [o.name for o in self.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self._out_names, feeds)
        return dict(zip(self._out_names, values))


def to_host(x) -> np.ndarray:
    """An engine output as a numpy array: device tensors (torch backend) are copied out."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # a torch tensor; the core does not import torch
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def open_engine(name_or_path: str | Path, backend: str = "ort", threads: int = 0, profile: str = "cpu") -> Engine:
    """Open a stage model by file name (looked up in the shipped models) or path.

    `trt` opens the engine built from that ONNX file for `profile`, from `<folder>/engines/<profile>/`
    (export/trt_build.py), after checking its manifest against this machine."""
    path = Path(name_or_path)
    if not path.is_absolute() and not path.exists():
        path = MODEL_DIR / path
    if backend == "ort":
        return OrtEngine(path, threads=threads)
    if backend == "trt":
        from talkrt.runtime.backends.trt import open_stage_engine

        return open_stage_engine(path, profile)
    if backend == "torch":
        raise TalkrtError("backend 'torch'", "runs a family's stages through its own loader "
                          "(runtime/backends/torch_liveportrait.py, torch_builtin.py), not single ONNX files")
    raise TalkrtError(f"backend {backend!r}", "is unknown (ort, trt, torch)")
