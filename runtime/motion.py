"""The `motion` stage interface: audio features -> per-frame builtin motion coefficients.

Every motion model (the hand-made heuristic driver, the trained diffusion transformer) takes the
same inputs and returns a [T, len(MOTION_FIELDS)] float32 array in the units below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from talkrt.runtime.audio_enc import AudioFeatures
from talkrt.runtime.errors import OptionError

# name -> (low, high, unit)
MOTION_SPEC: dict[str, tuple[float, float, str]] = {
    "jaw_open": (0.0, 1.0, "1 = wide open"),
    "lip_spread": (0.0, 1.0, "corners pulled outwards"),
    "lip_round": (0.0, 1.0, "corners drawn in"),
    "lip_press": (0.0, 1.0, "lips pressed shut, overrides jaw"),
    "smile": (-1.0, 1.0, "corners up (+) or down (-)"),
    "blink_l": (0.0, 1.0, "1 = closed"),
    "blink_r": (0.0, 1.0, "1 = closed"),
    "brow_raise": (0.0, 1.0, ""),
    "brow_furrow": (0.0, 1.0, ""),
    "gaze_x": (-1.0, 1.0, "+ = subject looks to image right"),
    "gaze_y": (-1.0, 1.0, "+ = down"),
    "head_pitch": (-15.0, 15.0, "deg, + = nod down"),
    "head_yaw": (-15.0, 15.0, "deg, + = turn to image right"),
    "head_roll": (-10.0, 10.0, "deg"),
    "head_tx": (-0.1, 0.1, "face widths"),
    "head_ty": (-0.1, 0.1, "face widths"),
    "head_scale": (-0.1, 0.1, "relative"),
}
MOTION_FIELDS = tuple(MOTION_SPEC)
FIELD = {name: i for i, name in enumerate(MOTION_FIELDS)}
MOTION_LOW = np.array([v[0] for v in MOTION_SPEC.values()], np.float32)
MOTION_HIGH = np.array([v[1] for v in MOTION_SPEC.values()], np.float32)

EMOTIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"smile": 0.6, "brow_raise": 0.15},
    "sad": {"smile": -0.4, "brow_furrow": 0.4},
    "surprised": {"brow_raise": 0.7, "jaw_open": 0.1},
    "angry": {"brow_furrow": 0.8, "smile": -0.2},
}


@dataclass(frozen=True)
class MotionControls:
    """User controls shared by every motion model."""

    seed: int = 0
    emotion: str = "neutral"
    head_motion: float = 1.0  # intensity multiplier of head movement; 0 = still head
    gaze: tuple[float, float] | None = None  # fixed gaze (x, y) in [-1, 1]; None = natural
    cfg_audio: float = 0.5  # classifier-free guidance weights (diffusion model only; VASA-1's values)
    cfg_gaze: float = 1.0
    steps: int = 8  # diffusion sampling steps

    def __post_init__(self):
        if self.emotion not in EMOTIONS:
            raise OptionError("--emotion", f"unknown emotion {self.emotion!r} (choose from {', '.join(EMOTIONS)})")
        if not (0.0 <= self.head_motion <= 3.0) or not np.isfinite(self.head_motion):
            raise OptionError("--head-motion", f"must be between 0 and 3, got {self.head_motion}")
        if self.gaze is not None and not all(-1.0 <= g <= 1.0 for g in self.gaze):
            raise OptionError("--gaze", f"both values must be in [-1, 1], got {self.gaze}")
        for name, value in (("--cfg-audio", self.cfg_audio), ("--cfg-gaze", self.cfg_gaze)):
            if not (0.0 <= value <= 10.0) or not np.isfinite(value):
                raise OptionError(name, f"must be between 0 and 10, got {value}")
        if not 1 <= self.steps <= 50:
            raise OptionError("--steps", f"must be between 1 and 50, got {self.steps}")


class MotionModel(Protocol):
    name: str

    def generate(self, features: AudioFeatures, controls: MotionControls) -> np.ndarray:
        """[T, len(MOTION_FIELDS)] float32 motion for the T frames of `features`."""
        ...


def clip_motion(motion: np.ndarray) -> np.ndarray:
    return np.clip(motion, MOTION_LOW, MOTION_HIGH).astype(np.float32)


@dataclass(frozen=True)
class MotionPlan:
    """How a stream cuts motion into windows (profile [stream]): each window commits `stride` frames
    and sees `lookahead_frames` frames of audio past them."""

    fps: float = 25.0
    stride: int = 2
    lookahead_frames: int = 2

    def __post_init__(self):
        if self.stride < 1 or self.lookahead_frames < 0:
            raise OptionError("profile stream", "stride must be >= 1 and lookahead >= 0")


class RateConverter:
    """Motion rows at a model's rate -> rows at the output rate, incrementally: output frame j is the
    linear blend of model rows around j * model_fps / fps (the identity at equal rates)."""

    def __init__(self, model_fps: float, fps: float, dim: int):
        self.model_fps, self.fps = model_fps, fps
        self.rows = np.zeros((0, dim), np.float32)
        self.base = 0  # model frame of rows[0]
        self.done = 0  # output frames emitted

    def push(self, rows: np.ndarray) -> None:
        if len(rows):
            self.rows = np.concatenate([self.rows, rows.astype(np.float32)])

    def take(self, total_model: int | None, total: float) -> np.ndarray:
        """New output rows; `total_model`/`total`: frame counts once the audio has ended (else None/inf)."""
        have = self.base + len(self.rows)
        out = []
        while self.done < total:
            p = self.done * self.model_fps / self.fps
            lo = int(p + 1e-9)
            frac = p - lo if p - lo > 1e-9 else 0.0
            hi = lo + 1 if frac else lo
            if total_model is not None:
                lo, hi = min(lo, total_model - 1), min(hi, total_model - 1)
            if hi >= have:
                break
            a, b = self.rows[lo - self.base], self.rows[hi - self.base]
            out.append(a + (b - a) * np.float32(frac) if hi != lo else a)
            self.done += 1
        keep = int(self.done * self.model_fps / self.fps) - 2 - self.base
        if keep > 256:
            self.rows, self.base = self.rows[keep:], self.base + keep
        return np.asarray(out, np.float32).reshape(-1, self.rows.shape[1])

    def rewind(self, frame: int) -> int:
        """Restart output at `frame`; returns the model frame to regenerate from."""
        model_frame = int(frame * self.model_fps / self.fps + 1e-9)
        self.rows = self.rows[:max(0, model_frame - self.base)]
        self.done = frame
        return model_frame


class RatedMotionStream:
    """What every family's motion stream shares with runtime/stream.py's contract: frames emitted so
    far (through `self.rate`, a RateConverter) and the clip's frame count once the audio has ended.
    Families add advance(audio), samples_needed(), samples_held() and rewind(frame, audio)."""

    fps: float
    rate: RateConverter

    @property
    def frames_done(self) -> int:
        return self.rate.done

    def total_frames(self, audio) -> float:
        from talkrt.runtime.audio_enc import frames_for

        return frames_for(audio.available, self.fps) if audio.ended else float("inf")


MOTION_MODELS = ("diffusion", "heuristic")


def open_motion(name: str, backend: str = "ort", threads: int = 0) -> MotionModel:
    """`diffusion`: the trained transformer (default); `heuristic`: the hand-made baseline."""
    if name == "heuristic":
        from talkrt.runtime.builtin.heuristic import HeuristicMotion

        return HeuristicMotion()
    if name == "diffusion":
        from talkrt.runtime.builtin.diffusion_motion import DiffusionMotion

        return DiffusionMotion(backend=backend, threads=threads)
    raise OptionError("--motion", f"unknown motion model {name!r} (available: {', '.join(MOTION_MODELS)})")
