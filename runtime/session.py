"""Offline generation: a file through the same streaming session as live audio.

`generate` prepares an avatar, pushes the decoded speech into a `Stream` in chunks (as fast as the
pipeline takes it, no idle frames), and writes the frames it gets to an MP4 or a y4m sink. The
frames are the ones a live stream of the same audio would show, whatever the chunk size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
from talkrt.runtime.avatar import Avatar, AvatarOptions
from talkrt.runtime.errors import OptionError
from talkrt.runtime.motion import MotionControls
from talkrt.runtime.profiles import Settings, load_settings
from talkrt.runtime.stream import Frame, Stream


@dataclass(frozen=True)
class SessionOptions:
    """What a user chooses; every default not given here comes from the profile."""

    profile: str = "cpu"
    model: str = "builtin"  # model family: builtin | liveportrait (or any runtime/<family>/)
    crop: bool = False  # output the 512x512 face crop instead of the whole photo
    max_size: int | None = None
    face_index: int = 0
    fps: float | None = None
    motion: str | None = None  # builtin: diffusion | heuristic
    controls: MotionControls | None = None  # default: MotionControls with the profile's steps
    weights: Path | None = None  # liveportrait: the folder of downloaded (or exported) weights
    cfg_scale: float = 2.0  # liveportrait: JoyVASA's audio guidance scale

    def __post_init__(self):
        if self.model == "liveportrait" and self.weights is None:
            raise OptionError("--model liveportrait", "needs --weights DIR")
        if self.model != "liveportrait" and self.weights is not None:
            raise OptionError("--weights", "is only used with --model liveportrait")
        if self.model != "builtin" and self.motion is not None:
            raise OptionError("--motion", "applies to the builtin family only (liveportrait uses JoyVASA)")
        self.avatar_options  # validates fps, sizes, family

    @property
    def settings(self) -> Settings:
        return load_settings(self.profile)

    @property
    def avatar_options(self) -> AvatarOptions:
        return AvatarOptions(family=self.model, crop=self.crop, max_size=self.max_size, face_index=self.face_index,
                             fps=self.fps, motion=self.motion, cfg_scale=self.cfg_scale,
                             weights=str(self.weights) if self.weights is not None else None)

    def resolved_controls(self) -> MotionControls:
        return self.controls or MotionControls(steps=self.settings.steps)


def chunks(samples: np.ndarray, chunk_ms: float) -> Iterator[np.ndarray]:
    n = max(1, int(round(chunk_ms / 1000 * SAMPLE_RATE_HZ)))
    for a in range(0, len(samples), n):
        yield samples[a:a + n]


def stream_file(stream: Stream, samples: np.ndarray, chunk_ms: float = 100.0) -> Iterator[Frame]:
    """Push a whole clip in chunks from a feeder thread and yield the frames as they come."""
    import threading

    def feed():
        try:
            for c in chunks(samples, chunk_ms):
                stream.push(c)
            stream.end_of_speech()
        except Exception:  # the stream holds the error; the reader raises it
            pass

    feeder = threading.Thread(target=feed, name="talkrt-feed", daemon=True)
    feeder.start()
    try:
        yield from stream
    finally:
        stream.close()
        feeder.join(timeout=10)


def open_sink(output: str | Path, width: int, height: int, fps: float, samples: np.ndarray | None, crf: int,
              preset: str):
    from talkrt.runtime.video_io import Mp4Writer, Y4mWriter

    if str(output) == "-" or Path(output).suffix.lower() == ".y4m":
        return Y4mWriter(output, width, height, fps)
    return Mp4Writer(output, width, height, fps, samples, crf=crf, preset=preset)


def generate(portrait: str | Path, audio: str | Path, output: str | Path, options: SessionOptions = SessionOptions(),
             progress: Callable[[int, int], None] | None = None, crf: int | None = None,
             chunk_ms: float = 1000.0, avatar: Avatar | None = None) -> dict:
    """Portrait (or a prepared avatar) + speech file -> MP4 or y4m. Returns a summary."""
    from talkrt.runtime.audio_enc import frames_for
    from talkrt.runtime.video_io import check_output_path

    check_output_path(output)
    settings = options.settings
    samples = load_audio(audio)
    avatar = avatar or Avatar.prepare(portrait, options.avatar_options, settings)
    width, height = avatar.frame_size
    total = frames_for(len(samples), avatar.fps)
    stream = Stream(avatar, options.resolved_controls(), live=False, policy="wait")
    start = time.perf_counter()
    with open_sink(output, width, height, avatar.fps, samples, crf if crf is not None else settings.crf,
                   settings.preset) as sink:
        for frame in stream_file(stream, samples, chunk_ms):
            sink.write(frame.image)
            if progress is not None:
                progress(frame.index + 1, total)
    elapsed = time.perf_counter() - start
    stats = stream.stats
    return {"frames": stats.frames, "audio_s": len(samples) / SAMPLE_RATE_HZ, "render_s": elapsed,
            "fps": stats.frames / max(elapsed, 1e-9), "width": width, "height": height,
            "stage_ms": dict(stats.stage_ms)}
