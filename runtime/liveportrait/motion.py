"""The liveportrait family's `motion` stage: JoyVASA's ancestral sampler on ONNX Runtime (numpy).

Windows of L frames with stride L; each conditions on the last K generated motions and audio
features of the window before (the first on the learned start features). Guidance is JoyVASA's
'incremental' mode on the audio condition: x0 = uncond + scale * (cond - uncond), one batch of 2.
The output is the 70-d normalised motion; `denormalize` turns it into LivePortrait's terms.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from talkrt.runtime.engine import Engine, open_engine, to_host


class JoyVASASampler:
    def __init__(self, folder: Path, backend: str = "ort", threads: int = 0, profile: str = "cpu",
                 engine: Engine | None = None):
        """`engine` runs the denoiser instead of folder/motion.onnx (e.g. a torch module on a GPU)."""
        meta = json.loads((folder / "manifest.json").read_text())["joyvasa"]
        self.n, self.k, self.d = meta["n_motions"], meta["n_prev_motions"], meta["motion_feat_dim"]
        self.steps = meta["n_diff_steps"]
        z = np.load(folder / "motion_start.npz")
        self.start_audio, self.start_motion, self.null_audio = z["start_audio"], z["start_motion"], z["null_audio"]
        self.alphas, self.alpha_bars, self.sigmas = z["alphas"], z["alpha_bars"], z["sigmas_inflex"]
        self.engine = engine or open_engine(folder / "motion.onnx", backend, threads, profile)

    def window(self, audio: np.ndarray, prev_motion: np.ndarray, prev_audio: np.ndarray, x: np.ndarray,
               noise: np.ndarray, cfg_scale: float) -> np.ndarray:
        """One window: audio [L, d] -> motion [L, 70]; `noise[i]` is used at step T - i (t > 1)."""
        null = np.broadcast_to(self.null_audio, audio.shape)
        feeds = {"audio": np.stack([audio, null]).astype(np.float32),
                 "prev_motion": np.stack([prev_motion, prev_motion]).astype(np.float32),
                 "prev_audio": np.stack([prev_audio, prev_audio]).astype(np.float32)}
        for i, t in enumerate(range(self.steps, 0, -1)):
            feeds["motion_noisy"] = np.stack([x, x]).astype(np.float32)
            feeds["step"] = np.full(2, t, np.float32)
            out = to_host(self.engine.run(feeds)["motion"])[:, -self.n:]
            x0 = out[1] + cfg_scale * (out[0] - out[1])
            a, ab, ab_prev = self.alphas[t], self.alpha_bars[t], self.alpha_bars[t - 1]
            c0 = np.sqrt(a) * (1 - ab_prev) / (1 - ab)
            c1 = np.sqrt(ab_prev) * (1 - a) / (1 - ab)
            x = c0 * x + c1 * x0 + (self.sigmas[t] * noise[i] if t > 1 else 0.0)
        return x.astype(np.float32)

    def windows(self, audio: np.ndarray, seed: int = 0, cfg_scale: float = 2.0) -> Iterator[np.ndarray]:
        """Normalised motion window by window ([<=L, 70] each), so rendering can start on the first
        window while later ones are sampled (runtime/scheduler.py `ahead`)."""
        rng = np.random.default_rng(seed)
        t_total = len(audio)
        n_win = max(1, -(-t_total // self.n))
        padded = np.concatenate([audio, np.zeros((n_win * self.n - t_total, audio.shape[1]), np.float32)])
        prev_m, prev_a = self.start_motion, self.start_audio
        x_T = rng.standard_normal((self.n, self.d)).astype(np.float32)  # reused for every window, as upstream
        for w in range(n_win):
            a = padded[w * self.n:(w + 1) * self.n]
            noise = rng.standard_normal((self.steps, self.n, self.d)).astype(np.float32)
            m = self.window(a, prev_m, prev_a, x_T, noise, cfg_scale)
            prev_m, prev_a = m[-self.k:], a[-self.k:]
            yield m[: max(0, min(self.n, t_total - w * self.n))]

    def generate(self, audio: np.ndarray, seed: int = 0, cfg_scale: float = 2.0) -> np.ndarray:
        """audio features [T, d] at 25 fps -> normalised motion [T, 70]."""
        return np.concatenate(list(self.windows(audio, seed, cfg_scale)))


def denormalize(motion: np.ndarray, template: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """[T, 70] -> exp [T,63], scale [T,1], t [T,3], pitch/yaw/roll [T] in degrees."""
    mm = lambda x, k: x * (template[f"max_{k}"] - template[f"min_{k}"]) + template[f"min_{k}"]
    return {"exp": motion[:, :63] * template["std_exp"] + template["mean_exp"],
            "scale": mm(motion[:, 63:64], "scale").reshape(-1, 1), "t": mm(motion[:, 64:67], "t").reshape(-1, 3),
            "pitch": mm(motion[:, 67:68], "pitch").reshape(-1), "yaw": mm(motion[:, 68:69], "yaw").reshape(-1),
            "roll": mm(motion[:, 69:70], "roll").reshape(-1)}


def load_template(folder: Path) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float32) for k, v in json.loads((folder / "motion_template.json").read_text()).items()}
