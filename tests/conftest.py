from __future__ import annotations

import os
from pathlib import Path

# Triton kernels run in its interpreter where there is no GPU; this must happen before triton is
# imported anywhere in the session.
if os.environ.get("TALKRT_TEST_GPU") != "1":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import sys

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# `python -m pytest` puts the checkout first on sys.path, where the top-level folder kernels/ would
# shadow Hugging Face's `kernels` package that transformers imports; talkrt itself is installed
# (talkrt.kernels), so the checkout is not needed there.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def device() -> str:
    """'cuda' only when asked for (TALKRT_TEST_GPU=1) and present; the interpreter wants CPU tensors."""
    import torch

    return "cuda" if os.environ.get("TALKRT_TEST_GPU") == "1" and torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return EXAMPLES / "portrait.jpg"


@pytest.fixture(scope="session")
def speech_path() -> Path:
    return EXAMPLES / "speech.wav"


@pytest.fixture(scope="session")
def portrait_rgb(portrait_path) -> np.ndarray:
    return np.asarray(Image.open(portrait_path).convert("RGB"))


@pytest.fixture(scope="session")
def analyzer():
    from talkrt.runtime.face import FaceAnalyzer

    return FaceAnalyzer()


@pytest.fixture(scope="session")
def portrait_mesh(analyzer, portrait_rgb):
    return analyzer.analyze(portrait_rgb)

