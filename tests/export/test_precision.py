"""FP16 (AutoCast) and INT8 (Q/DQ) transforms run on ONNX Runtime CPU, keep GridSample in FP32,
stay close to FP32 on fresh random inputs, and the verdict applies the profile's bounds."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from talkrt.export.export_liveportrait import _export
from talkrt.export.precision import (autocast_fp16, max_output_error, psnr_db, quantize_int8, verdict,
                                     write_report)
from talkrt.runtime.engine import MODEL_DIR
from talkrt.runtime.profiles import load_profile


def _run(path, feeds):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


@pytest.fixture(scope="module")
def tiny_warp(tmp_path_factory):
    from talkrt.models.lp_warping import WarpingNetwork

    torch.manual_seed(int(np.random.default_rng().integers(1 << 30)))
    dm = dict(block_expansion=4, max_features=16, num_blocks=2, reshape_depth=4, compress=2)
    net = WarpingNetwork(num_kp=3, block_expansion=4, max_features=16, num_down_blocks=1, reshape_channel=4,
                         dense_motion_params=dm).eval()
    path = tmp_path_factory.mktemp("warp") / "warp.onnx"
    kp = torch.rand(1, 3, 3) - 0.5
    _export(net, (torch.randn(1, 4, 4, 8, 8), kp, kp + 0.05), path, ["feature_3d", "kp_driving", "kp_source"],
            ["warped", "occlusion", "deformation"])
    return path


def _feeds(rng):
    kd = rng.uniform(-0.5, 0.5, (1, 3, 3)).astype(np.float32)
    return {"feature_3d": rng.standard_normal((1, 4, 4, 8, 8)).astype(np.float32), "kp_driving": kd,
            "kp_source": kd + rng.normal(0, 0.05, kd.shape).astype(np.float32)}


def test_fp16_warp_keeps_grid_sample_fp32(tiny_warp, tmp_path):
    dst = autocast_fp16(tiny_warp, tmp_path / "warp.fp16.onnx")
    model = onnx.load(dst)
    casts = Counter(n.op_type for n in model.graph.node)["Cast"]
    assert casts > 0
    # GridSample's data input must be produced in FP32 (a Cast to float, or an FP32 producer)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    for n in model.graph.node:
        if n.op_type == "GridSample":
            assert types.get(n.input[0], onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT
    rng = np.random.default_rng()
    feeds = _feeds(rng)
    err = max_output_error(_run(tiny_warp, feeds), _run(dst, feeds))
    assert 0 < err < 5e-2


def test_fp16_builtin_motion_model(tmp_path):
    dst = autocast_fp16(MODEL_DIR / "motion_builtin.onnx", tmp_path / "motion.fp16.onnx")
    rng = np.random.default_rng()
    b = 3
    a = json.loads((MODEL_DIR / "motion_builtin.json").read_text())["config"]["audio_dim"]  # mel (+ phones)
    feeds = {"motion_noisy": rng.standard_normal((b, 40, 17)), "t": rng.uniform(0, 1, b), "audio": rng.standard_normal((b, 40, a)),
             "prev_motion": rng.standard_normal((b, 10, 17)), "prev_audio": rng.standard_normal((b, 10, a)),
             "controls": rng.standard_normal((b, 8)), "cond_mask": np.ones((b, 5))}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    ref, out = _run(MODEL_DIR / "motion_builtin.onnx", feeds), _run(dst, feeds)
    assert max_output_error(ref, out) < 0.05 * max(float(np.abs(ref["motion"]).max()), 1.0)


def test_int8_inserts_qdq_and_stays_close(tiny_warp, tmp_path):
    from talkrt.runtime.manifest import file_sha256

    before = file_sha256(tiny_warp)
    rng = np.random.default_rng()
    calib = [_feeds(rng) for _ in range(4)]
    calibration = {k: np.concatenate([c[k] for c in calib]) for k in calib[0]}
    dst = quantize_int8(tiny_warp, tmp_path / "warp.int8.onnx", calibration, high_precision="fp32")
    assert file_sha256(tiny_warp) == before  # the FP32 source is never rewritten
    from talkrt.export.precision import qdq_nodes

    assert qdq_nodes(dst) > 0 and qdq_nodes(tiny_warp) == 0
    ops = Counter(n.op_type for n in onnx.load(dst).graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0 and ops["GridSample"] == 2
    feeds = _feeds(rng)
    ref = _run(tiny_warp, feeds)
    scale = max(float(np.abs(v).max()) for v in ref.values())
    assert max_output_error(ref, _run(dst, feeds)) < 0.1 * scale


def test_verdict_and_report(tmp_path):
    acc = load_profile("rtx4090")["accuracy"]
    assert verdict("warp.onnx", "fp16", 1e-3, 45.0, 10, acc).ships
    bad = verdict("warp.onnx", "int8", 0.2, 30.0, 10, acc)
    assert not bad.ships and "30.0 dB < 35.0 dB" in bad.why
    unquantized = verdict("stitching.onnx", "int8", 0.0, float("inf"), 10, acc, quantized=0)
    assert not unquantized.ships and "no Q/DQ" in unquantized.why
    path = write_report(tmp_path, [bad])
    from talkrt.export.trt_build import choose_onnx

    (tmp_path / "warp.int8.onnx").write_bytes(b"x")
    import json

    with pytest.raises(ValueError, match="30.0 dB < 35.0 dB"):
        choose_onnx(tmp_path, "warp.onnx", "int8", json.loads(path.read_text()))


def test_psnr():
    rng = np.random.default_rng()
    a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert psnr_db(a, a) == float("inf")
    b = np.clip(a.astype(int) + 1, 0, 255).astype(np.uint8)
    assert 48.1 <= psnr_db(a, b) < 50.0  # MSE <= 1 -> >= 48.13 dB
