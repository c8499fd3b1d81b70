"""The hand-made audio driver: loudness and spectral shape -> mouth, prosody -> head and brows,
a seeded random process -> blinks and gaze. Kept as the baseline for the trained model.

Causal, like every motion stage: a frame depends on the features up to `lookahead` frames after it,
on running statistics (loudest frame so far, mean pitch and spectral centroid so far) and on
sequential random processes whose draws are keyed by (seed, frame), so a clip streamed in any
chunking gives the same motion. Short smoothing looks `lookahead` frames ahead (the mouth does not
lag the voice); slow signals (brows, nods, head drift) are one-pole filters.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from talkrt.runtime.audio_enc import AudioFeatures
from talkrt.runtime.builtin.blinks import BLINK_SHAPE_S, BLINK_SHAPE_V
from talkrt.runtime.motion import EMOTIONS, FIELD, MOTION_FIELDS, MotionControls, MotionPlan, clip_motion

BLINKS_PER_MIN = 17.0
BLINK_MIN_GAP_S = 1.0
OU = {"head_pitch": (1.5, 0.9), "head_yaw": (2.5, 2.0), "head_roll": (3.0, 1.2), "head_tx": (3.0, 0.006),
      "head_ty": (3.0, 0.004), "head_scale": (4.0, 0.006)}  # field: (time constant s, std)
PRIOR_FRAMES = 25.0  # weight of the priors in the running means (1 s at 25 fps)


def _gauss(sigma: float, back: int, ahead: int) -> np.ndarray:
    k = np.arange(-back, ahead + 1)
    return np.exp(-0.5 * (k / sigma) ** 2)


class HeuristicMotion:
    name = "heuristic"

    def stream(self, controls: MotionControls, plan: MotionPlan) -> "HeuristicMotionStream":
        return HeuristicMotionStream(controls, plan)

    def generate(self, f: AudioFeatures, controls: MotionControls, plan: MotionPlan | None = None) -> np.ndarray:
        """[T, D] motion for a whole clip: the stream, fed everything at once."""
        s = self.stream(controls, plan or MotionPlan(fps=f.fps))
        s.push(f)
        return s.take(ended=True)


class HeuristicMotionStream:
    """push(features) / take(ended) / rewind(frame), as DiffusionMotionStream."""

    def __init__(self, controls: MotionControls, plan: MotionPlan):
        self.c, self.fps, self.ahead = controls, plan.fps, max(1, plan.lookahead_frames)
        self.base = 0
        self.raw: dict[str, np.ndarray] = {k: np.zeros(0) for k in ("jaw", "press", "colour", "level", "brow", "active")}
        self.stats = {"peak": -60.0, "cen_sum": 1500.0 * PRIOR_FRAMES, "cen_n": PRIOR_FRAMES,
                      "f0_sum": math.log2(120.0) * PRIOR_FRAMES, "f0_n": PRIOR_FRAMES}
        self.arrived = self.next = 0
        rng = np.random.default_rng([controls.seed, 1 << 30])
        self.state = {"ou": {k: rng.standard_normal() * sd for k, (_, sd) in OU.items()}, "brow": 0.0, "nod": 0.0,
                      "talk": 0.0, "pause": 1.0, "blink_start": -10 ** 6, "blink_ok": int(rng.uniform(0.3, 2.0) * self.fps),
                      "gaze_until": 0, "gaze": (0.0, 0.0), "gaze_s": (0.0, 0.0), "phase": rng.uniform(0, 6.3)}
        self.snapshots: deque = deque(maxlen=512)  # (frame, state) for rewind

    def push(self, f: AudioFeatures, speech: np.ndarray | None = None) -> None:
        """Per-frame raw drives from the features and the running statistics up to each frame."""
        st = self.stats
        db = f.rms_db.astype(np.float64)
        peak = np.maximum.accumulate(np.concatenate([[st["peak"]], np.where(db > -60, db, -60.0)]))[1:]
        floor = np.maximum(peak - 40.0, -60.0)
        level = np.clip((db - floor) / np.maximum(peak - floor, 1e-3), 0, 1)
        active = level > 0.08
        lin = np.clip(f.rms / (10 ** (peak / 20) + 1e-9), 0, 1.5)
        nasal = np.clip((f.low_ratio - 0.75) / 0.2, 0, 1) * np.clip((0.02 - f.high_ratio) / 0.02, 0, 1) * f.voiced
        cen = f.centroid_hz.astype(np.float64)
        cen_sum = st["cen_sum"] + np.cumsum(np.where(active, cen, 0.0))
        cen_n = st["cen_n"] + np.cumsum(active)
        colour = np.tanh((cen - cen_sum / cen_n) / 600.0) * active * np.clip(level * 1.5, 0, 1)
        voiced = f.f0_hz > 0
        lf0 = np.log2(np.maximum(f.f0_hz, 1.0))
        f0_sum = st["f0_sum"] + np.cumsum(np.where(voiced, lf0, 0.0))
        f0_n = st["f0_n"] + np.cumsum(voiced)
        semis = np.where(voiced, 12 * (lf0 - f0_sum / f0_n), 0.0)
        st.update(peak=float(peak[-1]), cen_sum=float(cen_sum[-1]), cen_n=float(cen_n[-1]), f0_sum=float(f0_sum[-1]),
                  f0_n=float(f0_n[-1]))
        new = {"jaw": np.clip(lin, 0, 1) ** 0.7 * active * (1 - 0.7 * nasal), "press": 0.8 * nasal, "colour": colour,
               "level": level, "brow": np.clip(semis - 1.5, 0, 6) / 6, "active": active.astype(np.float64)}
        for k, v in new.items():
            self.raw[k] = np.concatenate([self.raw[k], v])
        self.arrived += f.frames

    def rewind(self, frame: int) -> None:
        while self.snapshots and self.snapshots[-1][0] > frame:
            self.snapshots.pop()
        if self.snapshots and self.snapshots[-1][0] == frame:
            self.state = self.snapshots.pop()[1]
        for k in self.raw:
            self.raw[k] = self.raw[k][:frame - self.base]
        self.next = self.arrived = frame

    def _fir(self, key: str, j: int, sigma: float, back: int, last: int) -> float:
        """Gaussian smoothing of raw[key] around frame j over the frames that exist (< last)."""
        lo, hi = max(j - back, self.base), min(j + self.ahead, last - 1)
        w = _gauss(sigma, j - lo, hi - j)
        return float((self.raw[key][lo - self.base:hi + 1 - self.base] * w).sum() / w.sum())

    def take(self, ended: bool = False) -> np.ndarray:
        last = self.arrived
        rows = []
        while self.next < last and (ended or self.next + self.ahead < last):
            rows.append(self._frame(self.next, last))
            self.next += 1
        keep = self.next - 8 - self.base
        if keep > 256:
            self.raw = {k: v[keep:] for k, v in self.raw.items()}
            self.base += keep
        return clip_motion(np.asarray(rows, np.float64).reshape(-1, len(MOTION_FIELDS)))

    def _frame(self, j: int, last: int) -> np.ndarray:
        self.snapshots.append((j, _copy(self.state)))
        fps, c, s, hm = self.fps, self.c, self.state, self.c.head_motion
        rng = np.random.default_rng([c.seed, j])
        normal, uniform = rng.standard_normal(len(OU)), rng.random(4)
        ema = lambda old, new, tau_s: old + (new - old) * (1 - math.exp(-1.0 / (tau_s * fps)))
        r = lambda key: self.raw[key][j - self.base]
        m = np.zeros(len(MOTION_FIELDS))
        m[FIELD["jaw_open"]] = self._fir("jaw", j, 0.6, 2, last)
        lv = self.raw["level"]
        i = j - self.base
        dip = 0.0
        if 0 < i and j + 1 < last:  # a short dip between two loud frames: a bilabial closure
            dip = float(lv[i] < 0.25 and lv[i - 1] > 0.35 and lv[i + 1] > 0.35)
        m[FIELD["lip_press"]] = min(1.0, max(dip, self._fir("press", j, 0.5, 2, last)))
        colour = self._fir("colour", j, 1.0, 3, last)
        m[FIELD["lip_spread"]], m[FIELD["lip_round"]] = max(colour, 0) * 0.8, max(-colour, 0) * 0.8
        s["brow"] = ema(s["brow"], r("brow"), 0.12)
        m[FIELD["brow_raise"]] = s["brow"]
        onset = max(0.0, r("level") - (lv[i - 1] if i > 0 else 0.0)) * (r("level") > 0.5)
        s["nod"] = ema(s["nod"], onset * 12.0, 0.15)
        s["talk"] = ema(s["talk"], r("active"), 0.5)
        for n, (key, (tau, sd)) in enumerate(OU.items()):  # Ornstein-Uhlenbeck drift, one step per frame
            a = math.exp(-1.0 / (tau * fps))
            s["ou"][key] = a * s["ou"][key] + normal[n] * sd * math.sqrt(1 - a * a)
            m[FIELD[key]] = hm * s["ou"][key]
        m[FIELD["head_pitch"]] += hm * min(4.0, s["nod"])
        m[FIELD["head_yaw"]] *= 0.5 + 0.5 * s["talk"]
        m[FIELD["head_ty"]] += hm * 0.004 * math.sin(2 * math.pi * 0.25 * j / fps + s["phase"])  # breathing
        # blinks: a Poisson process, likelier in pauses, at least BLINK_MIN_GAP_S apart
        s["pause"] = ema(s["pause"], 1.0 - r("active"), 0.2)
        rate = BLINKS_PER_MIN / 60.0 / fps * (2.5 if s["pause"] > 0.8 else 1.0)
        if j >= s["blink_ok"] and uniform[0] < rate:
            s["blink_start"], s["blink_ok"] = j, j + int(BLINK_MIN_GAP_S * fps)
        t = (j - s["blink_start"]) / fps
        m[FIELD["blink_r"]] = np.interp(t, BLINK_SHAPE_S, BLINK_SHAPE_V, right=0.0)
        m[FIELD["blink_l"]] = np.interp(t - 1.0 / fps, BLINK_SHAPE_S, BLINK_SHAPE_V, left=0.0, right=0.0)
        if c.gaze is not None:
            m[FIELD["gaze_x"]], m[FIELD["gaze_y"]] = c.gaze
        else:  # saccades held 1-3.5 s, half of them back to the centre
            if j >= s["gaze_until"]:
                s["gaze_until"] = j + int((1.0 + 2.5 * uniform[1]) * fps)
                s["gaze"] = (0.0, 0.0) if uniform[2] < 0.5 else (0.7 * uniform[3] - 0.35, 0.35 * uniform[1] - 0.15)
            gx, gy = s["gaze_s"]
            s["gaze_s"] = (ema(gx, s["gaze"][0], 0.03), ema(gy, s["gaze"][1], 0.03))
            m[FIELD["gaze_x"]], m[FIELD["gaze_y"]] = s["gaze_s"]
        for name, offset in EMOTIONS[c.emotion].items():
            m[FIELD[name]] += offset
        return m


def _copy(state: dict) -> dict:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in state.items()}
