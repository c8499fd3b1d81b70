"""A built wheel (`pip install .`, not editable) holds every module of the source tree and the
shipped models, and its console script runs from it."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"runtime": "talkrt/runtime", "export": "talkrt/export", "kernels": "talkrt/kernels",
            "models": "talkrt/models", "profiles": "talkrt/profiles"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-w", str(out)], check=True, capture_output=True)
    return next(out.glob("talkrt-*.whl"))


def test_wheel_holds_every_module_and_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".onnx", ".toml") and "__pycache__" not in path.parts:
                expected.add(f"{package}/{path.relative_to(ROOT / folder).as_posix()}")
    missing = sorted(expected - names)
    assert not missing, f"the wheel lacks {missing[:10]}"
    assert "talkrt/runtime/models/motion_builtin.json" in names


def test_console_script_runs_from_the_wheel(wheel, tmp_path, portrait_path, speech_path):
    from talkrt.runtime.audio_io import load_audio

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    clip = tmp_path / "clip.wav"
    sf.write(clip, load_audio(speech_path)[:8000], 16000)
    env = dict(os.environ, PYTHONPATH=str(target))
    where = subprocess.run([sys.executable, "-c", "import talkrt.runtime.cli as c; print(c.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target))  # the wheel's copy, not the checkout's
    out = tmp_path / "o.y4m"
    res = subprocess.run([sys.executable, str(target / "bin" / "talkrt"), "generate", str(portrait_path), str(clip),
                          "-o", str(out), "--crop", "--quiet"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    from talkrt.runtime.video_io import read_y4m

    info, frames = read_y4m(out.read_bytes())
    assert (info["W"], info["H"], len(frames)) == ("512", "512", 12)
    assert np.frombuffer(frames[0], np.uint8).std() > 10
