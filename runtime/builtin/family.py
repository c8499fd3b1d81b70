"""The builtin family behind the family protocol (runtime/avatar.py).

prepare: face mesh of the photo (the only face-model run; an avatar file keeps photo + mesh).
renderer: BuiltinRenderer built once per avatar, forked per stream (own frame buffers).
motion stream: FeatureStream (audio_enc) -> the motion model's windows at its own rate (25 fps)
-> the idle gate -> the blink floor (blinks.py) -> rows at the output rate.

The idle gate closes the mouth where there is no voice: a frame's mouth coefficients are scaled by
the strongest voice activity within `lookahead` frames ahead and 100 ms behind, with linear ramps, so
the mouth opens just before speech, and closes within about 100 ms of its end (or of an interrupt).
"""
from __future__ import annotations

import numpy as np

from talkrt.runtime.audio_enc import FeatureStream, frames_for
from talkrt.runtime.builtin.blinks import BlinkFloor
from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions
from talkrt.runtime.motion import (FIELD, MOTION_FIELDS, MotionControls, MotionPlan, RatedMotionStream, RateConverter,
                                   open_motion)

MOUTH_FIELDS = [FIELD[k] for k in ("jaw_open", "lip_spread", "lip_round", "lip_press")]
SPEECH_FLOOR_DB = -55.0  # below this a frame is never speech
SPEECH_RANGE_DB = 35.0  # ... nor when this far below the loudest frame so far
RELEASE_S = 0.1  # the mouth closes over this after the voice stops


def plan_for(settings, fps: float) -> MotionPlan:
    st = settings.stream
    return MotionPlan(fps=fps, stride=st.stride, lookahead_frames=int(round(st.lookahead_ms / 1000 * fps)))


class BuiltinMotionStream(RatedMotionStream):
    """audio timeline -> motion rows at the avatar's fps, incrementally (runtime/stream.py's contract:
    advance, frames_done, total_frames, samples_needed, samples_held, rewind)."""

    def __init__(self, model, controls: MotionControls, settings, fps: float):
        self.model_fps = getattr(model, "fps", fps)
        self.fps = fps
        self.plan = plan_for(settings, self.model_fps)
        self.features = FeatureStream(self.model_fps, phones=getattr(model, "wants_phones", False))
        self.inner = model.stream(controls, self.plan)
        self.release = max(1, int(round(RELEASE_S * self.model_fps)))
        self.peak_db = -120.0
        self.speech = np.zeros(0, bool)  # voice activity per model frame (from speech_base)
        self.speech_base = 0
        self.blinks = BlinkFloor(controls.seed, self.model_fps)
        self.rate = RateConverter(self.model_fps, fps, len(MOTION_FIELDS))

    # the stream's contract (frames_done, total_frames: RatedMotionStream) -------------------------
    def samples_needed(self) -> int:
        return self.features.samples_for(self.inner.next + self.plan.stride + self.plan.lookahead_frames + 1)

    def samples_held(self) -> int:
        return self.features.hop * 160 - 256

    def advance(self, audio) -> np.ndarray:
        f = self.features.advance(audio)
        if f is not None and f.frames:
            loud = np.maximum.accumulate(np.concatenate([[self.peak_db], f.rms_db]))[1:]
            self.peak_db = float(loud[-1])
            speech = f.rms_db > np.maximum(SPEECH_FLOOR_DB, loud - SPEECH_RANGE_DB)
            self.speech = np.concatenate([self.speech, speech])
            self.inner.push(f, speech)
        ended = audio.ended and self.features.frame >= frames_for(audio.available, self.model_fps)
        first = self.inner.next
        rows = self.inner.take(ended=ended)
        if len(rows):
            self.rate.push(self.blinks.apply(self._gate(rows, first, ended), first))
        self._trim()
        total_model = frames_for(audio.available, self.model_fps) if audio.ended else None
        return self.rate.take(total_model, self.total_frames(audio))

    def rewind(self, frame: int, audio) -> None:
        model_frame = self.rate.rewind(frame)
        self.features.rewind(model_frame)
        self.inner.rewind(model_frame)
        self.blinks.rewind(model_frame)
        self.speech = self.speech[:max(0, model_frame - self.speech_base)]

    # internals -------------------------------------------------------------------------------------
    def _gate(self, rows: np.ndarray, first: int, ended: bool) -> np.ndarray:
        """Scale the mouth by voice activity in [j - release, j + lookahead] (linear ramps)."""
        ahead, back = self.plan.lookahead_frames, self.release
        out = rows.copy()
        act = self.speech
        for n in range(len(rows)):
            j = first + n
            g = 0.0
            for k in range(-back, ahead + 1):
                i = j + k - self.speech_base
                if 0 <= i < len(act) and act[i]:
                    g = max(g, 1.0 - abs(k) / ((back if k < 0 else ahead) + 1))
            out[n, MOUTH_FIELDS] *= g
        return out

    def _trim(self) -> None:
        keep = self.inner.next - self.release - 2 - self.speech_base
        if keep > 256:
            self.speech, self.speech_base = self.speech[keep:], self.speech_base + keep


class BuiltinFamily:
    name = "builtin"
    engine_stages: dict = {}  # face and motion run on ORT everywhere; the warp is a kernel, not an engine

    def prepare(self, photo: np.ndarray, options, settings, analyzer, name: str) -> dict[str, np.ndarray]:
        mesh = analyzer.analyze(photo, options.face_index, name).points
        return {"photo": photo, "mesh": mesh.astype(np.float32)}

    def _prototype(self, avatar) -> BuiltinRenderer:
        opts = RenderOptions(grid=avatar.settings.grid, crop_only=avatar.options.crop, cubic=avatar.settings.render_cubic)
        return BuiltinRenderer(avatar.data["photo"], avatar.data["mesh"], opts)

    def renderer(self, avatar):
        if avatar.settings.backend == "torch":  # the warp as Triton kernels on the GPU, own buffers
            from talkrt.runtime.backends.torch_builtin import TorchBuiltinRenderer

            opts = RenderOptions(grid=avatar.settings.grid, crop_only=avatar.options.crop)
            return TorchBuiltinRenderer(avatar.data["photo"], avatar.data["mesh"], opts)
        return avatar.shared("renderer", lambda: self._prototype(avatar)).fork()

    def motion_stream(self, avatar, controls: MotionControls, settings) -> BuiltinMotionStream:
        name = avatar.options.motion
        # one ORT thread: a window is a few small batch-1 calls, and streams run side by side
        model = avatar.shared(f"motion:{name}", lambda: open_motion(name, "ort", settings.threads or 1))
        return BuiltinMotionStream(model, controls, settings, avatar.fps)


FAMILY = BuiltinFamily()
