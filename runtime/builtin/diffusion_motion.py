"""The trained `motion` stage of the builtin family: DDIM sampling of talkrt's diffusion
transformer (export/models/motion_dit.py) on ONNX Runtime, in numpy, no torch.

Long audio runs in consecutive windows of N frames; each window is conditioned on the last K
frames of motion and audio of the one before (the first window runs without), so windows join
without a seam. Guidance follows VASA-1: x0 = (1 + la + lg) m(all) - la m(no audio) - lg m(no gaze),
evaluated as one batch. Deterministic for a given seed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_enc import AudioFeatures
from talkrt.runtime.engine import MODEL_DIR, open_engine
from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.motion import EMOTIONS, MotionControls, clip_motion

COND_AUDIO, COND_GAZE, COND_PREV, COND_HEAD, COND_EMOTION = range(5)


def alpha_bar(t: float, s: float = 0.008) -> float:
    """Cosine schedule, the same as training's (t in [0, 1], 0 = clean)."""
    return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2


def ddim_times(steps: int) -> np.ndarray:
    return np.linspace(1.0, 0.0, steps + 1)


class DiffusionMotion:
    name = "diffusion"

    def __init__(self, model: str | Path = MODEL_DIR / "motion_builtin.onnx", backend: str = "ort", threads: int = 0):
        model = Path(model)
        meta_path = model.with_suffix(".json")
        if not meta_path.is_file():
            raise TalkrtError(meta_path, "motion model config is missing")
        meta = json.loads(meta_path.read_text())
        self.cfg = meta["config"]
        self.mel_std = np.asarray(meta["stats"]["mel_std"], np.float32)
        self.motion_mean = np.asarray(meta["stats"]["motion_mean"], np.float32)
        self.motion_std = np.asarray(meta["stats"]["motion_std"], np.float32)
        self.fps = float(meta["fps"])
        self.engine = open_engine(model, backend, threads)

    def _controls(self, c: MotionControls) -> tuple[np.ndarray, np.ndarray]:
        """[3+E] control vector and its [5] condition mask (before guidance variants)."""
        e = self.cfg["n_emotions"]
        vec = np.zeros(3 + e, np.float32)
        mask = np.ones(5, np.float32)
        if c.gaze is None:
            mask[COND_GAZE] = 0
        else:
            vec[0:2] = c.gaze
        vec[2] = c.head_motion
        vec[3 + list(EMOTIONS).index(c.emotion)] = 1
        return vec, mask

    def denoise(self, x_t: np.ndarray, t: float, audio: np.ndarray, prev_m: np.ndarray, prev_a: np.ndarray,
                controls: np.ndarray, mask: np.ndarray, cfg_audio: float, cfg_gaze: float) -> np.ndarray:
        """Guided x0 prediction for one window ([N, D] normalised motion)."""
        variants = [mask]
        if cfg_audio:
            variants.append(mask * np.array([0, 1, 1, 1, 1], np.float32))
        use_gaze = cfg_gaze and mask[COND_GAZE] > 0
        if use_gaze:
            variants.append(mask * np.array([1, 0, 1, 1, 1], np.float32))
        b = len(variants)
        rep = lambda a: np.repeat(a[None], b, 0)
        out = self.engine.run({"motion_noisy": rep(x_t), "t": np.full(b, t, np.float32), "audio": rep(audio),
                               "prev_motion": rep(prev_m), "prev_audio": rep(prev_a), "controls": rep(controls),
                               "cond_mask": np.stack(variants)})["motion"]
        x0 = out[0] * (1 + (cfg_audio or 0) + (cfg_gaze if use_gaze else 0))
        i = 1
        if cfg_audio:
            x0 -= cfg_audio * out[i]
            i += 1
        if use_gaze:
            x0 -= cfg_gaze * out[i]
        return x0

    def generate(self, f: AudioFeatures, controls: MotionControls) -> np.ndarray:
        n, k, d = self.cfg["window"], self.cfg["context"], self.cfg["motion_dim"]
        if abs(f.fps - self.fps) > 1e-6:  # the model runs at its own rate; resample in time
            return self._resampled(f, controls)
        mel = (f.mel - f.mel.mean(0)) / self.mel_std  # per-clip mean removal, as in training
        t_total = len(mel)
        n_win = max(1, math.ceil(t_total / n))
        padded = np.concatenate([mel, np.repeat(mel[-1:], n_win * n - t_total, 0)]).astype(np.float32)
        vec, mask = self._controls(controls)
        rng = np.random.default_rng(controls.seed)
        out = np.zeros((n_win * n, d), np.float32)
        prev_m = np.zeros((k, d), np.float32)
        prev_a = np.zeros((k, mel.shape[1]), np.float32)
        times = ddim_times(controls.steps)
        for w in range(n_win):
            audio = padded[w * n:(w + 1) * n]
            m = mask.copy()
            if w == 0:  # nothing before the first window
                m[COND_PREV] = 0
            x = rng.standard_normal((n, d)).astype(np.float32)
            for t, t_next in zip(times[:-1], times[1:]):
                x0 = self.denoise(x, float(t), audio, prev_m, prev_a, vec, m, controls.cfg_audio, controls.cfg_gaze)
                if t_next <= 0:
                    x = x0
                    break
                ab, ab_next = alpha_bar(t), alpha_bar(t_next)
                eps = (x - math.sqrt(ab) * x0) / math.sqrt(max(1 - ab, 1e-8))
                x = (math.sqrt(ab_next) * x0 + math.sqrt(1 - ab_next) * eps).astype(np.float32)
            out[w * n:(w + 1) * n] = x
            prev_m = out[(w + 1) * n - k:(w + 1) * n]
            prev_a = padded[(w + 1) * n - k:(w + 1) * n]
        return clip_motion(out[:t_total] * self.motion_std + self.motion_mean)

    def _resampled(self, f: AudioFeatures, controls: MotionControls) -> np.ndarray:
        t_src = np.arange(f.frames) / f.fps
        t_model = np.arange(max(1, int(round(f.frames / f.fps * self.fps)))) / self.fps
        mel = np.stack([np.interp(t_model, t_src, f.mel[:, i]) for i in range(f.mel.shape[1])], 1).astype(np.float32)
        g = AudioFeatures(fps=self.fps, rms=np.interp(t_model, t_src, f.rms).astype(np.float32),
                          rms_db=np.interp(t_model, t_src, f.rms_db).astype(np.float32), mel=mel,
                          low_ratio=f.low_ratio[:0], high_ratio=f.high_ratio[:0], centroid_hz=f.centroid_hz[:0],
                          f0_hz=f.f0_hz[:0], voiced=f.voiced[:0])
        m = self.generate(g, controls)
        return np.stack([np.interp(t_src, t_model, m[:, i]) for i in range(m.shape[1])], 1).astype(np.float32)
