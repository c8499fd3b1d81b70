"""Kernel tests run their Triton kernels in the interpreter when no CUDA device is present.

TRITON_INTERPRET must be set before triton is first imported; tests/conftest.py does it for the
whole session. With TALKRT_TEST_GPU=1 on a CUDA machine the same tests run compiled."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def gen() -> torch.Generator:
    """A fresh generator per test, seeded from the test's own randomness (never zeros)."""
    g = torch.Generator()
    g.seed()
    return g
