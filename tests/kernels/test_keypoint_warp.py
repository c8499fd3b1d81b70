"""The fused keypoint-driven warp against W's unfused sampling path, and inside W itself."""
from __future__ import annotations

import pytest
import torch

from talkrt.kernels.keypoint_warp import keypoint_warp, keypoint_warp_ref, motion_input, motion_input_ref


def _keypoints(gen, b, k, device):
    kd = torch.rand(b, k, 3, generator=gen) * 1.6 - 0.8
    ks = kd + torch.randn(b, k, 3, generator=gen) * 0.15
    return kd.to(device), ks.to(device)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 4e-3)])
def test_motion_input(dtype, tol, gen, device):
    b, c, d, h, w, k = 2, 4, 4, 6, 5, 3
    feat = torch.randn(b, c, d, h, w, generator=gen).to(device, dtype)
    kd, ks = _keypoints(gen, b, k, device)
    out = motion_input(feat, kd, ks)
    ref = motion_input_ref(feat.float(), kd, ks)
    assert out.shape == (b, (k + 1) * (c + 1), d, h, w)
    assert (out.float() - ref).abs().max().item() < tol


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float16, 4e-3)])
def test_keypoint_warp(dtype, tol, gen, device):
    b, c, d, h, w, k = 2, 6, 4, 6, 5, 4
    feat = torch.randn(b, c, d, h, w, generator=gen).to(device, dtype)
    mask = torch.softmax(torch.randn(b, k + 1, d, h, w, generator=gen) * 3, 1).to(device, dtype)
    kd, ks = _keypoints(gen, b, k, device)
    out, deformation = keypoint_warp(feat, mask, kd, ks, return_deformation=True)
    ref, ref_def = keypoint_warp_ref(feat.float(), mask.float(), kd, ks)
    assert (deformation.float() - ref_def).abs().max().item() < tol
    assert (out.float() - ref).abs().max().item() < tol
    assert (keypoint_warp(feat, mask, kd, ks).float() - ref).abs().max().item() < tol


def test_fused_warping_module_matches_unfused(gen, device):
    """W with the fused kernels switched on gives W's outputs."""
    from talkrt.models.lp_warping import WarpingNetwork

    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    dm = dict(block_expansion=4, max_features=16, num_blocks=2, reshape_depth=4, compress=2)
    net = WarpingNetwork(num_kp=3, block_expansion=4, max_features=4 * 4, num_down_blocks=1, reshape_channel=4,
                         dense_motion_params=dm).eval().to(device)
    feat = torch.randn(1, 4, 4, 8, 8, generator=gen).to(device)
    kd, ks = _keypoints(gen, 1, 3, device)
    with torch.no_grad():
        ref = net(feat, kd, ks)
        net.set_fused(True)
        out = net(feat, kd, ks)
    for a, r in zip(out, ref):
        assert (a - r).abs().max().item() < 1e-4
