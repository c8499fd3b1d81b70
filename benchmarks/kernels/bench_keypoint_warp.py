"""Fused keypoint-driven warp (motion_input + keypoint_warp) vs W's unfused sampling path, fp16.

    python benchmarks/kernels/bench_keypoint_warp.py [--cpu]
"""
from common import check, device, report, setup, time_ms

args = setup(__doc__.splitlines()[0])
import torch  # noqa: E402

from talkrt.kernels.keypoint_warp import keypoint_warp, keypoint_warp_ref, motion_input, motion_input_ref  # noqa: E402

dev = device(args)
c, cc, k, (d, h, w) = (32, 4, 21, (16, 64, 64)) if dev == "cuda" else (4, 4, 3, (4, 8, 8))
rows = []
for dtype in (torch.float16, torch.float32):
    feat = torch.randn(1, c, d, h, w, device=dev, dtype=dtype)
    comp = torch.randn(1, cc, d, h, w, device=dev, dtype=dtype)
    kd = torch.rand(1, k, 3, device=dev) * 1.6 - 0.8
    ks = kd + 0.1 * torch.randn(1, k, 3, device=dev)
    mask = torch.softmax(3 * torch.randn(1, k + 1, d, h, w, device=dev), 1).to(dtype)
    e1 = float((motion_input(comp, kd, ks).float() - motion_input_ref(comp.float(), kd, ks)).abs().max())
    e2 = float((keypoint_warp(feat, mask, kd, ks).float() - keypoint_warp_ref(feat.float(), mask.float(), kd, ks)[0]).abs().max())
    check("fused warp", max(e1, e2), 1e-2 if dtype == torch.float16 else 1e-5)
    kdt, kst = kd.to(dtype), ks.to(dtype)
    ms, p99 = time_ms(lambda: (motion_input(comp, kd, ks), keypoint_warp(feat, mask, kd, ks)), args.iters, dev)
    ref_ms, _ = time_ms(lambda: (motion_input_ref(comp, kdt, kst), keypoint_warp_ref(feat, mask, kdt, kst)), args.iters, dev)
    rows.append(dict(case=f"W sampling K={k} [{c},{d},{h},{w}] {str(dtype)[6:]}", max_err=max(e1, e2), ms=ms,
                     p99_ms=p99, torch_ms=ref_ms))
report("keypoint_warp", dev, rows)
