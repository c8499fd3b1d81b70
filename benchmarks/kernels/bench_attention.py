"""Fused attention vs torch's scaled_dot_product_attention at the motion transformers' shapes.

    python benchmarks/kernels/bench_attention.py [--cpu]
"""
from common import check, device, report, setup, time_ms

args = setup(__doc__.splitlines()[0])
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from talkrt.kernels.attention import attention, attention_ref  # noqa: E402

dev = device(args)
cases = [("builtin DiT, CFG batch 3", 3, 4, 103, 32), ("JoyVASA, CFG batch 2", 2, 8, 110, 64)]
if dev == "cpu":
    cases = [("tiny", 1, 2, 20, 16)]
rows = []
for label, b, h, n, d in cases:
    for dtype in (torch.float16, torch.float32):
        q, k, v = (torch.randn(b, h, n, d, device=dev, dtype=dtype) for _ in range(3))
        err = float((attention(q, k, v).float() - attention_ref(q.float(), k.float(), v.float())).abs().max())
        check(label, err, 5e-3 if dtype == torch.float16 else 1e-4)
        ms, p99 = time_ms(lambda: attention(q, k, v), args.iters, dev)
        ref_ms, _ = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.iters, dev)
        rows.append(dict(case=f"{label} [{b},{h},{n},{d}] {str(dtype)[6:]}", max_err=err, ms=ms, p99_ms=p99,
                         torch_ms=ref_ms))
report("attention", dev, rows)
