"""The builtin renderer with its warp on the torch backend (Triton, here in the interpreter on CPU)
renders what the CPU renderer renders."""
from __future__ import annotations

import numpy as np
import pytest

from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions
from talkrt.runtime.motion import FIELD, MOTION_FIELDS


@pytest.mark.parametrize("crop_only", [True, False])
def test_same_frames_as_cpu_renderer(portrait_rgb, analyzer, crop_only, device):
    from talkrt.runtime.backends.torch_builtin import TorchBuiltinRenderer

    mesh = analyzer.analyze(portrait_rgb, 0, "portrait").points
    opts = RenderOptions(size=64, grid=16, crop_only=crop_only, cubic=False)  # the kernel samples bilinearly
    cpu = BuiltinRenderer(portrait_rgb, mesh, opts)
    gpu = TorchBuiltinRenderer(portrait_rgb, mesh, opts, device=device)
    rng = np.random.default_rng()
    for _ in range(2):
        motion = np.zeros(len(MOTION_FIELDS), np.float32)
        motion[FIELD["jaw_open"]] = rng.uniform(0.2, 0.9)
        motion[FIELD["blink_l"]] = motion[FIELD["blink_r"]] = rng.uniform(0, 1)
        a = cpu.render(motion).astype(int)
        b = gpu.render(motion).astype(int)
        assert a.shape == b.shape
        diff = np.abs(a - b)
        assert diff.mean() < 0.3 and np.percentile(diff, 99.9) <= 4


def test_torch_backend_without_cuda_is_one_clear_error(portrait_rgb, analyzer):
    import torch

    from talkrt.runtime.backends.torch_builtin import TorchBuiltinRenderer
    from talkrt.runtime.errors import TalkrtError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    mesh = analyzer.analyze(portrait_rgb, 0, "portrait").points
    with pytest.raises(TalkrtError, match="no CUDA device"):
        TorchBuiltinRenderer(portrait_rgb, mesh, RenderOptions(size=64, grid=16, crop_only=True))
