"""Triton 3-D grid sample vs F.grid_sample at LivePortrait W's shapes (fp16 and fp32).

    python benchmarks/kernels/bench_grid_sample3d.py [--cpu]
"""
from common import check, device, report, setup, time_ms

args = setup(__doc__.splitlines()[0])
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from talkrt.kernels.grid_sample3d import grid_sample3d, grid_sample3d_ref  # noqa: E402

dev = device(args)
# W's final sample [1, 32, 16, 64, 64] and its sparse-motion sample [22, 4, 16, 64, 64]
cases = [("final sample", 1, 32), ("sparse motions", 22, 4)] if dev == "cuda" else [("tiny", 2, 4)]
d, h, w = (16, 64, 64) if dev == "cuda" else (4, 8, 8)
rows = []
for label, n, c in cases:
    for dtype in (torch.float16, torch.float32):
        vol = torch.randn(n, c, d, h, w, device=dev, dtype=dtype)
        grid = (torch.rand(n, d, h, w, 3, device=dev) * 2.2 - 1.1).to(dtype)
        err = float((grid_sample3d(vol, grid).float() - grid_sample3d_ref(vol.float(), grid.float())).abs().max())
        check(label, err, 1e-2 if dtype == torch.float16 else 1e-5)
        ms, p99 = time_ms(lambda: grid_sample3d(vol, grid), args.iters, dev)
        ref_ms, _ = time_ms(lambda: F.grid_sample(vol, grid, align_corners=False), args.iters, dev)
        rows.append(dict(case=f"{label} [{n},{c},{d},{h},{w}] {str(dtype)[6:]}", max_err=err, ms=ms, p99_ms=p99,
                         torch_ms=ref_ms))
report("grid_sample3d", dev, rows)
