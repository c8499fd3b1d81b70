"""Fused attention against the explicit softmax form on fresh random inputs (tails, masks, fp16),
and inside the builtin motion transformer."""
from __future__ import annotations

import pytest
import torch

from talkrt.kernels.attention import attention, attention_ref


@pytest.mark.parametrize("lq,lk,d", [(37, 37, 32), (20, 45, 24)])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float16, 3e-3)])
def test_matches_reference(lq, lk, d, dtype, tol, gen, device):
    q = torch.randn(2, 3, lq, d, generator=gen).to(device, dtype)
    k = torch.randn(2, 3, lk, d, generator=gen).to(device, dtype)
    v = torch.randn(2, 3, lk, d, generator=gen).to(device, dtype)
    out = attention(q, k, v)
    assert out.dtype == dtype
    assert (out.float() - attention_ref(q.float(), k.float(), v.float())).abs().max().item() < tol


def test_mask_like_joyvasa_alignment(gen, device):
    n, d = 30, 16
    q, k, v = (torch.randn(1, 2, n, d, generator=gen).to(device) for _ in range(3))
    mask = ~torch.eye(n, dtype=torch.bool, device=device)  # each query sees only its own key
    out = attention(q, k, v, mask)
    assert (out - v).abs().max().item() < 1e-6
    rand_mask = torch.rand(n, n, generator=gen).to(device) < 0.5
    rand_mask.fill_diagonal_(False)  # every row keeps one key
    assert (attention(q, k, v, rand_mask) - attention_ref(q, k, v, rand_mask)).abs().max().item() < 2e-5


def test_strided_views(gen, device):
    """q, k, v as the DiT makes them: views into one qkv projection."""
    x = torch.randn(2, 25, 3, 4, 16, generator=gen).to(device).permute(2, 0, 3, 1, 4)  # [3, B, H, n, D]
    q, k, v = x[0], x[1], x[2]
    assert (attention(q, k, v) - attention_ref(q, k, v)).abs().max().item() < 2e-5


def test_motion_dit_with_fused_attention(gen, device):
    from talkrt.models.motion_dit import MotionDiT, MotionDiTConfig

    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    cfg = MotionDiTConfig(width=32, heads=2, layers=2, ff=64)
    net = MotionDiT(cfg).eval()
    torch.nn.init.normal_(net.out.weight)  # the output layer starts at zero, which would hide everything
    net = net.to(device)
    b = 2
    args = (torch.randn(b, cfg.window, cfg.motion_dim), torch.rand(b), torch.randn(b, cfg.window, cfg.audio_dim),
            torch.randn(b, cfg.context, cfg.motion_dim), torch.randn(b, cfg.context, cfg.audio_dim),
            torch.randn(b, 3 + cfg.n_emotions), torch.ones(b, 5))
    args = tuple(a.to(device) for a in args)
    with torch.no_grad():
        ref = net(*args)
        out = net.set_fused(True)(*args)
    assert ref.abs().max().item() > 0.1
    assert (out - ref).abs().max().item() < 1e-4


def test_bad_shapes():
    with pytest.raises(ValueError, match="attention wants"):
        attention(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))
