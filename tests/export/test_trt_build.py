"""The engine builder's logic without TensorRT: shapes, ONNX choice, and the call sequence checked
against a recording stand-in for the `tensorrt` module (the real calls run where TensorRT is)."""
from __future__ import annotations

import json
from enum import IntEnum
from types import SimpleNamespace

import onnx
import pytest
from onnx import TensorProto, helper

from talkrt.export import trt_build
from talkrt.export.trt_build import build_engine, choose_onnx, network_flags, optimization_shapes
from talkrt.runtime.backends.cuda import check
from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.profiles import load_profile


def _model(*inputs):
    vis = [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n, dims in inputs]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Identity", [inputs[0][0]], ["y"])
    return helper.make_model(helper.make_graph([node], "g", vis, [y]))


def test_shapes_from_profile_and_ranges():
    m = _model(("motion_noisy", ["batch", 40, 17]), ("waveform", [1, "samples"]))
    shapes = {s.name: s for s in optimization_shapes(m, (2, 2, 8))}
    assert shapes["motion_noisy"].min == (2, 40, 17) and shapes["motion_noisy"].max == (8, 40, 17)
    assert shapes["waveform"].opt == (1, 64_000) and shapes["waveform"].dynamic


def test_unknown_dynamic_dim_is_named():
    with pytest.raises(ValueError, match="'tokens' has no range"):
        optimization_shapes(_model(("x", [1, "tokens"])), (1, 1, 1))


def test_int8_only_where_the_report_allows(tmp_path):
    for name in ("warp.onnx", "warp.fp16.onnx", "warp.int8.onnx"):
        (tmp_path / name).write_bytes(b"x")
    report = {"warp.onnx": {"fp16": {"ships": True}, "int8": {"ships": False, "why": "PSNR 31.2 dB < 35.0 dB"}}}
    assert choose_onnx(tmp_path, "warp.onnx", "fp32", None).name == "warp.onnx"
    assert choose_onnx(tmp_path, "warp.onnx", "fp16", report).name == "warp.fp16.onnx"
    with pytest.raises(ValueError, match="int8 is not shipped: PSNR 31.2"):
        choose_onnx(tmp_path, "warp.onnx", "int8", report)
    with pytest.raises(ValueError, match="no accuracy report"):
        choose_onnx(tmp_path, "warp.onnx", "fp16", None)


class _Recorder:
    """Stands in for the tensorrt module: records calls, fails where told to."""

    def __init__(self, parse_ok=True, plan=b"PLAN", strongly_typed=True):
        self.calls, self.parse_ok, self.plan = [], parse_ok, plan
        flags = {"STRONGLY_TYPED": 4} if strongly_typed else {}
        self.NetworkDefinitionCreationFlag = IntEnum("Flag", {"EXPLICIT_BATCH": 0, **flags})
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
        self.BuilderFlag = SimpleNamespace(VERSION_COMPATIBLE="VC")
        rec = self

        class Config:
            def __init__(self):
                self.builder_optimization_level = None

            def set_memory_pool_limit(self, pool, size): rec.calls.append(("pool", pool, size))
            def set_flag(self, flag): rec.calls.append(("flag", flag))
            def add_optimization_profile(self, p): rec.calls.append(("profile", dict(p.shapes)))
            def create_timing_cache(self, data): rec.calls.append(("cache_in", data)); return SimpleNamespace(serialize=lambda: b"CACHE")
            def set_timing_cache(self, cache, ignore_mismatch): rec.calls.append(("cache_set", ignore_mismatch))
            def get_timing_cache(self): return SimpleNamespace(serialize=lambda: b"CACHE2")

        class Builder:
            def __init__(self, logger): pass
            def create_network(self, flags): rec.calls.append(("network", flags)); return "net"
            def create_builder_config(self): rec.config = Config(); return rec.config
            def create_optimization_profile(self):
                p = SimpleNamespace(shapes={})
                p.set_shape = lambda n, a, b, c: p.shapes.__setitem__(n, (a, b, c))
                return p
            def build_serialized_network(self, net, config):
                rec.calls.append(("build", config.builder_optimization_level))
                return rec.plan

        class Parser:
            def __init__(self, net, logger): self.num_errors = 0 if rec.parse_ok else 1
            def parse_from_file(self, path): rec.calls.append(("parse", path)); return rec.parse_ok
            def get_error(self, i): return "In node 3 (GridSample3D): plugin not found"

        self.Builder, self.OnnxParser = Builder, Parser


def _shapes():
    m = _model(("x", ["batch", 3]))
    return optimization_shapes(m, (1, 2, 4))


def test_build_sequence(tmp_path):
    trt = _Recorder()
    build = dict(load_profile("rtx4090")["build"], version_compatible=True)
    (tmp_path / "w.onnx").write_bytes(b"")
    build_engine(trt, None, tmp_path / "w.onnx", tmp_path / "w.engine", _shapes(), build, tmp_path / "t.cache")
    kinds = [c[0] for c in trt.calls]
    assert kinds == ["network", "parse", "pool", "flag", "profile", "cache_in", "cache_set", "build"]
    assert trt.calls[0][1] == 1 << 4  # strongly typed
    assert trt.calls[4][1] == {"x": ((1, 3), (2, 3), (4, 3))}
    assert ("build", 4) in trt.calls
    assert (tmp_path / "w.engine").read_bytes() == b"PLAN" and (tmp_path / "t.cache").read_bytes() == b"CACHE2"


def test_build_without_strong_typing_enum(tmp_path):
    assert network_flags(_Recorder(strongly_typed=False)) == 0


def test_parse_and_build_failures_are_one_line(tmp_path):
    build = load_profile("rtx4090")["build"]
    with pytest.raises(RuntimeError, match="cannot parse it: In node 3 .GridSample3D.: plugin not found"):
        build_engine(_Recorder(parse_ok=False), None, tmp_path / "w.onnx", tmp_path / "w.engine", _shapes(), build, None)
    with pytest.raises(RuntimeError, match="engine build failed"):
        build_engine(_Recorder(plan=None), None, tmp_path / "w.onnx", tmp_path / "w.engine", _shapes(), build, None)
    assert not (tmp_path / "w.engine").exists()


def test_cuda_error_tuples_are_unwrapped():
    ok = SimpleNamespace(value=0, name="cudaSuccess")
    assert check((ok, 7), "cudaMalloc") == 7
    assert check((ok, 1, 2), "x") == (1, 2)
    with pytest.raises(TalkrtError, match="CUDA cudaMalloc: failed with cudaErrorMemoryAllocation"):
        check((SimpleNamespace(value=2, name="cudaErrorMemoryAllocation"), 0), "cudaMalloc")


def test_cli_reports_missing_tensorrt(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_trt(name, *a, **k):
        if name == "tensorrt":
            raise ImportError("No module named 'tensorrt'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_trt)
    (tmp_path / "precision_report.json").write_text(json.dumps({}))
    with pytest.raises(SystemExit) as exit_:
        trt_build.main(["--onnx", str(tmp_path), "--profile", "rtx4090"])
    assert "tensorrt" in str(exit_.value.code)
