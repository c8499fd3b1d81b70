"""Triton mesh warp vs the CPU reference (backward map + cv2.remap) on the example portrait's mesh.

    python benchmarks/kernels/bench_mesh_warp.py [--cpu]
"""
import time

from common import ROOT, check, device, report, setup, time_ms

args = setup(__doc__.splitlines()[0])
import numpy as np  # noqa: E402
import torch  # noqa: E402

from talkrt.kernels.mesh_warp_triton import mesh_warp, mesh_warp_ref, mesh_warp_tables  # noqa: E402
from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions  # noqa: E402
from talkrt.runtime.face import FaceAnalyzer  # noqa: E402
from talkrt.runtime.image_io import load_image  # noqa: E402

dev = device(args)
size = 512 if dev == "cuda" else 64
photo = load_image(ROOT / "examples" / "portrait.jpg")
r = BuiltinRenderer(photo, FaceAnalyzer().analyze(photo, 0, "portrait").points,
                    RenderOptions(size=size, grid=size // 4, crop_only=True))
motion = np.zeros(17, np.float32)
motion[0] = 0.8  # jaw open: the largest displacement the rig makes
disp = (r.rig.displace(motion) @ r.lin.T).astype(np.float32)
idx, wts = (torch.from_numpy(a).to(dev) for a in mesh_warp_tables(r.grid))
src, disp_t = torch.from_numpy(np.ascontiguousarray(r.source)).to(dev), torch.from_numpy(disp).to(dev)
run = lambda: mesh_warp(src, idx, wts, disp_t, r.grid.base.shape[:2], r.grid.step)
ref = mesh_warp_ref(r.source, r.grid, disp)
diff = np.abs(run().cpu().numpy().astype(int) - ref.astype(int))
check("mesh_warp", float(diff.max()), 5)
ms, p99 = time_ms(run, args.iters, dev)
t = time.perf_counter()
for _ in range(10):
    mesh_warp_ref(r.source, r.grid, disp)
cpu_ms = (time.perf_counter() - t) * 100
report("mesh_warp", dev, [dict(case=f"{size}x{size} crop, grid {size // 4} (reference: CPU OpenCV)",
                               max_err=float(diff.max()), ms=ms, p99_ms=p99, torch_ms=cpu_ms)])
