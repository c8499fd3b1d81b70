"""Triton 3-D grid sample against torch's F.grid_sample on fresh random inputs."""
from __future__ import annotations

import pytest
import torch

from talkrt.kernels.grid_sample3d import grid_sample3d, grid_sample3d_ref

TOL = {torch.float32: 1e-5, torch.float16: 3e-3}


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_torch(align_corners, dtype, channels_last, gen, device):
    vol = torch.randn(2, 5, 4, 6, 7, generator=gen).to(device, dtype)
    if channels_last:
        vol = vol.to(memory_format=torch.channels_last_3d)
    # coordinates reach past [-1, 1] so zero padding and partial corners are exercised
    grid = (torch.rand(2, 3, 5, 4, 3, generator=gen) * 2.6 - 1.3).to(device)
    out = grid_sample3d(vol, grid, align_corners)
    ref = grid_sample3d_ref(vol.float(), grid, align_corners)
    assert out.dtype == dtype and out.shape == ref.shape
    assert out.is_contiguous(memory_format=torch.channels_last_3d) == channels_last
    assert (out.float() - ref).abs().max().item() < TOL[dtype]


def test_many_channels_loop_over_blocks(gen, device):
    vol = torch.randn(1, 37, 3, 4, 5, generator=gen).to(device)  # > one 32-channel block
    grid = (torch.rand(1, 2, 3, 4, 3, generator=gen) * 2 - 1).to(device)
    assert (grid_sample3d(vol, grid) - grid_sample3d_ref(vol, grid)).abs().max().item() < 1e-5


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="volume"):
        grid_sample3d(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4, 3))
