"""Polygraphy comparisons: PyTorch vs ORT FP32 vs ORT FP16 on W, with real verdicts both ways."""
from __future__ import annotations

import numpy as np
import torch

from talkrt.export.compare import TorchRunner, compare_backends, ort_runner
from talkrt.export.export_liveportrait import _export, _WarpOut
from talkrt.export.precision import autocast_fp16


def test_pytorch_vs_onnxruntime_fp32_and_fp16(tmp_path):
    from talkrt.models.lp_warping import WarpingNetwork

    torch.manual_seed(int(np.random.default_rng().integers(1 << 30)))
    dm = dict(block_expansion=4, max_features=16, num_blocks=2, reshape_depth=4, compress=2)
    w = _WarpOut(WarpingNetwork(num_kp=3, block_expansion=4, max_features=16, num_down_blocks=1, reshape_channel=4,
                                dense_motion_params=dm)).eval()
    names = ["feature_3d", "kp_driving", "kp_source"]
    kp = torch.rand(1, 3, 3) - 0.5
    _export(w, (torch.randn(1, 4, 4, 8, 8), kp, kp + 0.05), tmp_path / "warp.onnx", names, ["warped"])
    autocast_fp16(tmp_path / "warp.onnx", tmp_path / "warp.fp16.onnx")
    rng = np.random.default_rng()
    feeds = []
    for _ in range(2):
        kd = rng.uniform(-0.5, 0.5, (1, 3, 3)).astype(np.float32)
        feeds.append({"feature_3d": rng.standard_normal((1, 4, 4, 8, 8)).astype(np.float32), "kp_driving": kd,
                      "kp_source": (kd + rng.normal(0, 0.05, kd.shape)).astype(np.float32)})
    torch_runner = TorchRunner(w, {n: feeds[0][n].shape for n in names}, ["warped"])
    ok, worst = compare_backends([torch_runner, ort_runner(tmp_path / "warp.onnx")], feeds, atol=1e-4)
    assert ok and worst["warped"] < 1e-4
    ok16, worst16 = compare_backends([torch_runner, ort_runner(tmp_path / "warp.fp16.onnx")], feeds, atol=1e-7)
    assert not ok16 and 1e-7 < worst16["warped"] < 5e-2  # FP16 is visibly different at FP32 tolerance ...
    ok16, _ = compare_backends([torch_runner, ort_runner(tmp_path / "warp.fp16.onnx")], feeds, atol=5e-2)
    assert ok16  # ... and within the FP16 tolerance
