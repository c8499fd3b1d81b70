"""The torch backend's stage wrapper on CPU (no graphs), and its refusals."""
from __future__ import annotations

import pytest
import torch

from talkrt.runtime.backends.torch_backend import TorchStage, on_stream, pinned_empty
from talkrt.runtime.errors import TalkrtError


def _net():
    torch.manual_seed(int(torch.randint(0, 2**31, (1,))))
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


def test_fp32_stage_matches_module():
    net = _net()
    x = torch.randn(3, 8)
    with torch.no_grad():
        ref = net(x)
    stage = TorchStage(net, "fp32", "cpu")
    assert torch.allclose(stage(x), ref)


def test_fp16_stage_casts_inputs_and_weights():
    net = _net()
    x = torch.randn(3, 8)
    with torch.no_grad():
        ref = net(x)
    out = TorchStage(net, "fp16", "cpu")(x)
    assert out.dtype == torch.float16
    assert (out.float() - ref).abs().max().item() < 2e-2 * max(1.0, ref.abs().max().item())


def test_refusals():
    with pytest.raises(TalkrtError, match="fp32 or fp16"):
        TorchStage(_net(), "int8", "cpu")
    with pytest.raises(TalkrtError, match="CUDA graphs need a CUDA device"):
        TorchStage(_net(), "fp32", "cpu", cuda_graphs=True)


def test_helpers_on_cpu():
    buf = pinned_empty((2, 3), torch.uint8)
    assert buf.shape == (2, 3) and buf.dtype == torch.uint8
    assert on_stream("stream1", lambda: 7) == 7
