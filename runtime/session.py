"""A talking-head session: prepare a portrait once, then turn speech into frames.

face -> appearance happen in `Session.__init__`; audio_enc -> motion in `Session.motion_for`;
warp -> decode -> paste per frame in `Session.frames`. `generate` adds the MP4 sink.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from talkrt.runtime.audio_enc import AudioFeatures, encode
from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions
from talkrt.runtime.errors import OptionError
from talkrt.runtime.face import FaceAnalyzer
from talkrt.runtime.image_io import load_image
from talkrt.runtime.motion import MotionControls, open_motion
from talkrt.runtime.profiles import load_profile


@dataclass(frozen=True)
class SessionOptions:
    fps: float = 25.0
    max_size: int = 1280
    crop: bool = False  # output the 512x512 face crop instead of the whole photo
    face_index: int = 0
    motion: str = "heuristic"
    controls: MotionControls = MotionControls()
    grid: int = 128
    backend: str = "ort"  # the liveportrait stages' backend; face and builtin models always run on ORT
    threads: int = 0
    profile: str = "cpu"  # engines for the trt backend are looked up under this profile's name
    model: str = "builtin"  # model family: builtin | liveportrait
    weights: Path | None = None  # liveportrait: the folder of downloaded (or exported) weights
    cfg_scale: float = 2.0  # liveportrait: JoyVASA's audio guidance scale

    def __post_init__(self):
        if not (1.0 <= self.fps <= 120.0) or not np.isfinite(self.fps):
            raise OptionError("--fps", f"must be between 1 and 120, got {self.fps}")
        if not (128 <= self.max_size <= 8192):
            raise OptionError("--max-size", f"must be between 128 and 8192, got {self.max_size}")
        if self.face_index < 0:
            raise OptionError("--face-index", f"must be 0 or more, got {self.face_index}")
        if self.model not in ("builtin", "liveportrait"):
            raise OptionError("--model", f"unknown model family {self.model!r} (builtin or liveportrait)")
        if self.model == "liveportrait" and self.weights is None:
            raise OptionError("--model liveportrait", "needs --weights DIR")
        if self.model == "builtin" and self.weights is not None:
            raise OptionError("--weights", "is only used with --model liveportrait")

    @classmethod
    def from_profile(cls, name: str = "cpu", **overrides) -> "SessionOptions":
        p = load_profile(name)
        base = dict(fps=p["video"]["fps"], max_size=p["render"]["max_size"], grid=p["render"]["grid"],
                    motion=p["motion"]["model"], backend=p["engine"]["backend"], threads=p["engine"]["threads"],
                    profile=name)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


@dataclass
class StageTimes:
    """Wall-clock milliseconds of every call, per stage (host work; the CPU path is synchronous)."""

    samples_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.samples_ms[stage].append((now - start) * 1000.0)
        return now

    @property
    def total_ms(self) -> dict[str, float]:
        return {k: float(sum(v)) for k, v in self.samples_ms.items()}


def _fit(rgb: np.ndarray, max_size: int) -> np.ndarray:
    """Downscale so the longer side is at most max_size; even width and height (yuv420p)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_size / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


class Session:
    """One portrait, prepared once; any number of audio clips rendered from it."""

    def __init__(self, portrait: str | Path | np.ndarray, options: SessionOptions = SessionOptions(),
                 analyzer: FaceAnalyzer | None = None):
        self.options = options
        self.times = StageTimes()
        name = "portrait" if isinstance(portrait, np.ndarray) else str(portrait)
        rgb = portrait if isinstance(portrait, np.ndarray) else load_image(portrait)
        self.photo = _fit(rgb, options.max_size)
        t = time.perf_counter()
        analyzer = analyzer or FaceAnalyzer("ort", options.threads)
        self.mesh = analyzer.analyze(self.photo, options.face_index, name)
        t = self.times.add("face", t)
        render_options = RenderOptions(grid=options.grid, crop_only=options.crop)
        if options.backend == "torch":  # the warp as Triton kernels on the GPU
            from talkrt.runtime.backends.torch_builtin import TorchBuiltinRenderer

            self.renderer = TorchBuiltinRenderer(self.photo, self.mesh.points, render_options)
        else:
            self.renderer = BuiltinRenderer(self.photo, self.mesh.points, render_options)
        self.times.add("appearance", t)
        self.motion_model = open_motion(options.motion, "ort", options.threads)  # 25 ms per s of audio

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of output frames."""
        h, w = self.renderer.canvas.shape[:2]
        return w, h

    def motion_for(self, audio: np.ndarray) -> tuple[AudioFeatures, np.ndarray]:
        t = time.perf_counter()
        feats = encode(audio, self.options.fps)
        t = self.times.add("audio_enc", t)
        motion = self.motion_model.generate(feats, self.options.controls)
        self.times.add("motion", t)
        return feats, motion

    def frames(self, motion: np.ndarray) -> Iterator[np.ndarray]:
        """Rendered frames, one per motion row; each is valid until the next is produced."""
        r = self.renderer
        for row in motion:
            t = time.perf_counter()
            points = r.warp(row)
            t = self.times.add("warp", t)
            r.decode(points, row)
            t = self.times.add("decode", t)
            frame = r.paste()
            self.times.add("paste", t)
            yield frame


def open_session(portrait: str | Path | np.ndarray, options: SessionOptions):
    """The session of the options' model family."""
    if options.model == "builtin":
        return Session(portrait, options)
    from talkrt.runtime.liveportrait.pipeline import LivePortraitSession
    from talkrt.runtime.liveportrait.weights import onnx_folder

    folder = onnx_folder(Path(options.weights))
    name = "portrait" if isinstance(portrait, np.ndarray) else str(portrait)
    rgb = portrait if isinstance(portrait, np.ndarray) else load_image(portrait)
    return LivePortraitSession(_fit(rgb, options.max_size), folder, FaceAnalyzer("ort", options.threads),
                               options, name, StageTimes())


def generate(portrait: str | Path, audio: str | Path, output: str | Path, options: SessionOptions = SessionOptions(),
             progress: Callable[[int, int], None] | None = None, crf: int = 20, preset: str = "veryfast") -> dict:
    """Portrait + speech file -> MP4. Returns a summary (frames, seconds, per-stage ms)."""
    from talkrt.runtime.video_io import Mp4Writer, check_output_path

    check_output_path(output)
    samples = load_audio(audio)
    session = open_session(portrait, options)
    _, motion = session.motion_for(samples)
    width, height = session.frame_size
    start = time.perf_counter()
    with Mp4Writer(output, width, height, options.fps, samples, crf=crf, preset=preset) as writer:
        for i, frame in enumerate(session.frames(motion)):
            t = time.perf_counter()
            writer.write(frame)
            session.times.add("sink", t)
            if progress is not None:
                progress(i + 1, len(motion))
    elapsed = time.perf_counter() - start
    return {"frames": len(motion), "audio_s": len(samples) / SAMPLE_RATE_HZ, "render_s": elapsed,
            "fps": len(motion) / max(elapsed, 1e-9), "width": width, "height": height,
            "stage_ms": dict(session.times.total_ms)}
