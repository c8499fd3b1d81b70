"""The trained `motion` stage of the builtin family: DDIM sampling of talkrt's diffusion
transformer (models/motion_dit.py) on ONNX Runtime, in numpy, no torch, window by window.

Streaming windows: each model call sees N frames starting at the first frame not yet committed and
commits only the first `stride` of them. Its audio is real for `stride + lookahead` frames and the
last real row repeated after that (the model never sees audio that has not arrived), and it is
conditioned on the K frames of motion and audio before it (VASA-1's previous-window context), so
windows join without a seam. The initial noise is one sequence over absolute frame indices, drawn
from RNGs keyed by (seed, block of frames): overlapping windows start from the same noise where they
overlap, and the result depends on the audio and the seed only, never on how the audio was chunked.

Guidance follows VASA-1: x0 = (1 + la + lg) m(all) - la m(no audio) - lg m(no gaze), the variants
evaluated as separate batch-1 calls (cheaper than one batch on ONNX Runtime's CPU provider).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_enc import N_MELS, AudioFeatures
from talkrt.runtime.engine import MODEL_DIR, open_engine
from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.motion import EMOTIONS, FIELD, MotionControls, MotionPlan, clip_motion

COND_AUDIO, COND_GAZE, COND_PREV, COND_HEAD, COND_EMOTION = range(5)
ENSEMBLE_WINDOWS = 4  # windows whose predictions of a frame are averaged (slow channels)
SLOW = [FIELD[k] for k in ("smile", "brow_raise", "brow_furrow", "gaze_x", "gaze_y", "head_pitch", "head_yaw",
                           "head_roll", "head_tx", "head_ty", "head_scale")]
HEAD = [FIELD[k] for k in ("head_pitch", "head_yaw", "head_roll", "head_tx", "head_ty", "head_scale")]
NOISE_BLOCK = 64  # frames of initial noise drawn per RNG key
HEAD_GAIN = 1.5  # the default --head-motion plays the model's head pose this much larger (see head_gain)
PRIOR_FRAMES = 50.0  # weight of the prior speech level in the running mel mean (2 s at 25 fps)


def head_gain(level: float) -> float:
    """Scale on the model's head pose for the --head-motion level. The model learned its head from a
    rule set (train/targets.py) whose drift is small: on real voices it turns the head by 0.5-1 degree
    (std) over a few seconds and 2.5 at most over 20 s, less than people move while they talk (a few
    degrees), so the default level plays it at HEAD_GAIN. The model also follows its head-intensity
    condition only partly: at 0 it still moves the head (std 1-2 degrees), and its movement at 2 and 3
    is 1.47x and 1.72x that at 1 (on the example speech). Below 1 the level scales the pose (0 = a
    still head); above 1 the gain adds what the model leaves out, so that the movement grows about in
    proportion to the level (2: ~2x, 3: ~2.9x)."""
    return HEAD_GAIN * (level if level <= 1.0 else 1.0 + 0.35 * (level - 1.0))


def alpha_bar(t: float, s: float = 0.008) -> float:
    """Cosine schedule, the same as training's (t in [0, 1], 0 = clean)."""
    return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2


def ddim_times(steps: int) -> np.ndarray:
    return np.linspace(1.0, 0.0, steps + 1)


class DiffusionMotion:
    """The model and its sampler; `stream()` makes the per-stream state, `generate` runs one clip."""

    name = "diffusion"

    def __init__(self, model: str | Path = MODEL_DIR / "motion_builtin.onnx", backend: str = "ort", threads: int = 0):
        model = Path(model)
        meta_path = model.with_suffix(".json")
        if not meta_path.is_file():
            raise TalkrtError(meta_path, "motion model config is missing")
        meta = json.loads(meta_path.read_text())
        self.cfg = meta["config"]
        stats = meta["stats"]
        self.mel_std = np.asarray(stats["mel_std"], np.float32)
        self.motion_mean = np.asarray(stats["motion_mean"], np.float32)
        self.motion_std = np.asarray(stats["motion_std"], np.float32)
        # training removed each utterance's mean mel; a stream has no utterance, so it removes a
        # running mean of its speech frames, started from a prior and shifted by the pause offset
        # (see train/stream_stats.py)
        self.mel_prior = np.asarray(stats["mel_speech_prior"], np.float64)
        self.mel_offset = np.asarray(stats["mel_speech_offset"], np.float64)
        # models trained with the acoustic model's phone posteriors (runtime/phonetic.py) take them
        # after the 40 mel columns, standardised by the training set's statistics
        self.wants_phones = self.cfg["audio_dim"] > N_MELS
        if self.wants_phones:
            self.phone_mean = np.asarray(stats["phone_mean"], np.float32)
            self.phone_std = np.asarray(stats["phone_std"], np.float32)
        self.fps = float(meta["fps"])
        self.engine = open_engine(model, backend, threads)

    def controls_vector(self, c: MotionControls) -> tuple[np.ndarray, np.ndarray]:
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
        feeds = {"motion_noisy": x_t[None], "t": np.full(1, t, np.float32), "audio": audio[None],
                 "prev_motion": prev_m[None], "prev_audio": prev_a[None], "controls": controls[None]}
        run = lambda m: self.engine.run({**feeds, "cond_mask": m[None]})["motion"][0]
        full = run(mask)
        use_gaze = bool(cfg_gaze) and mask[COND_GAZE] > 0
        x0 = full * (1 + (cfg_audio or 0) + (cfg_gaze if use_gaze else 0))
        if cfg_audio:
            x0 -= cfg_audio * run(mask * np.array([0, 1, 1, 1, 1], np.float32))
        if use_gaze:
            x0 -= cfg_gaze * run(mask * np.array([1, 0, 1, 1, 1], np.float32))
        return x0

    def sample(self, audio: np.ndarray, prev_m: np.ndarray | None, prev_a: np.ndarray | None,
               controls: MotionControls, noise: np.ndarray) -> np.ndarray:
        """One window: normalised audio [N, A] (+ optional context [K, D], [K, A]) and the initial
        noise [N, D] -> normalised motion [N, D]."""
        k, d = self.cfg["context"], self.cfg["motion_dim"]
        vec, mask = self.controls_vector(controls)
        if prev_m is None:
            mask[COND_PREV] = 0
            prev_m, prev_a = np.zeros((k, d), np.float32), np.zeros((k, audio.shape[1]), np.float32)
        x = noise
        times = ddim_times(controls.steps)
        for t, t_next in zip(times[:-1], times[1:]):
            x0 = self.denoise(x, float(t), audio, prev_m, prev_a, vec, mask, controls.cfg_audio, controls.cfg_gaze)
            if t_next <= 0:
                return x0.astype(np.float32)
            ab, ab_next = alpha_bar(t), alpha_bar(t_next)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(max(1 - ab, 1e-8))
            x = (math.sqrt(ab_next) * x0 + math.sqrt(1 - ab_next) * eps).astype(np.float32)
        return x

    def stream(self, controls: MotionControls, plan: MotionPlan) -> "DiffusionMotionStream":
        return DiffusionMotionStream(self, controls, plan)

    def generate(self, f: AudioFeatures, controls: MotionControls, plan: MotionPlan | None = None) -> np.ndarray:
        """[T, D] motion for the T frames of a whole clip: the stream, fed everything at once."""
        s = self.stream(controls, plan or MotionPlan(fps=f.fps))
        s.push(f)
        return s.take(ended=True)


class DiffusionMotionStream:
    """Per-stream state: raw feature rows, running speech statistics, the committed motion."""

    def __init__(self, model: DiffusionMotion, controls: MotionControls, plan: MotionPlan):
        if abs(plan.fps - model.fps) > 1e-6:
            raise TalkrtError(f"--fps {plan.fps:g}", f"the trained motion model runs at {model.fps:g} fps "
                              "(use --fps 25 or --motion heuristic)")
        self.model, self.controls, self.plan = model, controls, plan
        self.base = 0  # frame index of mel[0]
        self.mel = np.zeros((0, 40), np.float32)
        self.phones = np.zeros((0, len(model.phone_mean) if model.wants_phones else 0), np.float32)
        self.sum_speech = np.zeros((0, 40))  # [frames, 40] prefix sums of speech-frame mel (float64)
        self.n_speech = np.zeros(0)  # [frames] prefix counts of speech frames
        self.speech = np.zeros(0, bool)
        self.next = 0  # first frame not yet committed
        self.motion = np.zeros((0, model.cfg["motion_dim"]), np.float32)  # committed, normalised; row 0 = frame base
        self.arrived = 0
        self._acc: tuple | None = None  # (next window start, [H, D] sums, [H] counts) of predictions

    # input -------------------------------------------------------------------------------------
    def push(self, f: AudioFeatures, speech: np.ndarray | None = None) -> None:
        """Append feature rows (frames arrived .. arrived + len - 1); `speech` marks voice activity."""
        if f.frames == 0:
            return
        speech = f.rms_db > -50.0 if speech is None else speech
        mel = f.mel.astype(np.float64)
        prev_sum = self.sum_speech[-1] if len(self.sum_speech) else np.zeros(40)
        prev_n = self.n_speech[-1] if len(self.n_speech) else 0.0
        self.sum_speech = np.concatenate([self.sum_speech, prev_sum + np.cumsum(mel * speech[:, None], 0)])
        self.n_speech = np.concatenate([self.n_speech, prev_n + np.cumsum(speech)])
        self.mel = np.concatenate([self.mel, f.mel.astype(np.float32)])
        if self.model.wants_phones:
            if f.phones.shape[1] != self.phones.shape[1]:
                raise TalkrtError("motion model", "needs phone posteriors (FeatureStream(phones=True))")
            self.phones = np.concatenate([self.phones, (f.phones - self.model.phone_mean) / self.model.phone_std])
        self.speech = np.concatenate([self.speech, speech])
        self.arrived += f.frames

    def rewind(self, frame: int) -> None:
        """Forget features and motion from `frame` on (an interruption); `frame` >= what was kept."""
        cut = frame - self.base
        self.mel, self.sum_speech, self.n_speech = self.mel[:cut], self.sum_speech[:cut], self.n_speech[:cut]
        self.speech, self.motion, self.phones = self.speech[:cut], self.motion[:cut], self.phones[:cut]
        self.next = self.arrived = frame
        self._acc = None

    # output ------------------------------------------------------------------------------------
    def _norm_mel(self, a: int, b: int, through: int) -> np.ndarray:
        """Mel rows a..b-1 normalised by the running speech mean over frames < `through`."""
        i = through - 1 - self.base
        s = self.sum_speech[i] if i >= 0 else 0.0
        n = self.n_speech[i] if i >= 0 else 0.0
        mean = (PRIOR_FRAMES * self.model.mel_prior + s) / (PRIOR_FRAMES + n) - self.model.mel_offset
        mel = ((self.mel[a - self.base:b - self.base] - mean) / self.model.mel_std).astype(np.float32)
        if not self.model.wants_phones:
            return mel
        return np.concatenate([mel, self.phones[a - self.base:b - self.base]], 1)

    def take(self, ended: bool = False) -> np.ndarray:
        """Commit every window the arrived features allow; returns the new motion rows [n, D]."""
        m, plan = self.model, self.plan
        n, k = m.cfg["window"], m.cfg["context"]
        stride, ahead = plan.stride, plan.lookahead_frames
        out = []
        while self.next < self.arrived:
            s = self.next
            real_end = min(s + stride + ahead, self.arrived)
            if real_end < s + stride + ahead and not ended:
                break
            audio = self._norm_mel(s, real_end, real_end)
            audio = np.concatenate([audio, np.repeat(audio[-1:], n - len(audio), 0)]) if len(audio) < n else audio[:n]
            prev_m = prev_a = None
            if s > 0:  # context: the K frames before, the oldest repeated when fewer exist
                lo = max(s - k, self.base)
                prev_m = self.motion[lo - self.base:s - self.base]
                prev_a = self._norm_mel(lo, s, real_end)
                if len(prev_m) < k:
                    prev_m = np.concatenate([np.repeat(prev_m[:1], k - len(prev_m), 0), prev_m])
                    prev_a = np.concatenate([np.repeat(prev_a[:1], k - len(prev_a), 0), prev_a])
            x = m.sample(audio, prev_m, prev_a, self.controls, self._noise(s, n))
            x = self._ensemble(s, x)
            commit = min(stride, self.arrived - s)
            self.motion = np.concatenate([self.motion, x[:commit]])
            out.append(x[:commit])
            self.next = s + commit
        self._trim(k)
        if not out:
            return np.zeros((0, m.cfg["motion_dim"]), np.float32)
        rows = np.concatenate(out) * m.motion_std + m.motion_mean
        rows[:, HEAD] *= head_gain(self.controls.head_motion)
        return clip_motion(rows)

    def _ensemble(self, s: int, x: np.ndarray) -> np.ndarray:
        """Slow channels (head, gaze, brows, smile) of frame j average every window's prediction of j
        within ENSEMBLE_WINDOWS strides (temporal ensembling); mouth and blinks keep the newest."""
        h = ENSEMBLE_WINDOWS * self.plan.stride
        acc = self._acc
        if acc is None or acc[0] != s:  # first window, or after a rewind
            acc = (s, np.zeros((h, x.shape[1])), np.zeros(h))
        _, total, count = acc
        total = total + np.concatenate([x[:h], np.zeros((max(0, h - len(x)), x.shape[1]))])
        count = count + (np.arange(h) < len(x))
        out = x.copy()
        mean = total / np.maximum(count, 1)[:, None]
        out[:h, SLOW] = mean[:len(x), SLOW]

        shift = self.plan.stride  # the next window starts `stride` frames later
        self._acc = (s + shift, np.concatenate([total[shift:], np.zeros((shift, x.shape[1]))]),
                     np.concatenate([count[shift:], np.zeros(shift)]))
        return out.astype(np.float32)

    def _noise(self, start: int, n: int) -> np.ndarray:
        """Initial noise of frames start..start+n-1, a fixed sequence over absolute frame indices:
        overlapping windows start from the same noise for the same frames, so successive windows
        agree where they overlap and the committed frames join smoothly."""
        d = self.model.cfg["motion_dim"]
        first, last = start // NOISE_BLOCK, (start + n - 1) // NOISE_BLOCK
        blocks = [np.random.default_rng([self.controls.seed, b]).standard_normal((NOISE_BLOCK, d))
                  for b in range(first, last + 1)]
        off = start - first * NOISE_BLOCK
        return np.concatenate(blocks)[off:off + n].astype(np.float32)

    def _trim(self, k: int) -> None:
        """Keep only the context the next window needs (memory stays flat over an hour)."""
        keep_from = self.next - k - 1
        drop = keep_from - self.base
        if drop > 256:
            self.mel, self.sum_speech, self.n_speech = self.mel[drop:], self.sum_speech[drop:], self.n_speech[drop:]
            self.speech, self.motion, self.phones = self.speech[drop:], self.motion[drop:], self.phones[drop:]
            self.base += drop
