"""The sink: H.264 MP4 with the speech muxed as AAC, written by PyAV on a worker thread.

The file is written under a hidden temporary name beside the target and renamed only when
complete; on any failure the temporary file is removed and no output is left behind.
"""
from __future__ import annotations

import os
import queue
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.errors import InputError

AAC_FRAME = 1024


def check_output_path(path: str | Path) -> Path:
    """Fail early (before any rendering) on an output path that cannot be written."""
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise InputError(path, "output must be an .mp4 file")
    if path.is_dir():
        raise InputError(path, "output path is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(path, f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(path, "output path is not writable")
    return path


class Mp4Writer:
    """Usage: `with Mp4Writer(...) as w: w.write(frame)...`; leaving the block normally commits."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, audio: np.ndarray,
                 crf: int = 20, preset: str = "veryfast", queue_frames: int = 8):
        import av

        self.path = check_output_path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self.audio = audio
        self.fps = fps
        try:
            self.container = av.open(str(self.tmp), mode="w", format="mp4")
        except OSError as exc:
            raise InputError(self.path, f"cannot write output ({exc.strerror or exc})") from None
        rate = Fraction(fps).limit_denominator(1001)
        self.video = self.container.add_stream("libx264", rate=rate)
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        self.video.options = {"crf": str(crf), "preset": preset}
        self.sound = self.container.add_stream("aac", rate=SAMPLE_RATE_HZ)
        self.sound.layout = "mono"
        self.audio_pos = 0
        self.frames = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self.worker = threading.Thread(target=self._run, name="talkrt-encode", daemon=True)
        self.worker.start()

    # encoding thread ----------------------------------------------------------------------------
    def _push_audio(self, until: int) -> None:
        import av

        until = min(until, len(self.audio))
        while self.audio_pos + AAC_FRAME <= until or (until == len(self.audio) and self.audio_pos < until):
            chunk = self.audio[self.audio_pos:self.audio_pos + AAC_FRAME]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk[None, :], np.float32), format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE_HZ
            frame.pts = self.audio_pos
            self.audio_pos += len(chunk)
            for packet in self.sound.encode(frame):
                self.container.mux(packet)

    def _run(self) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    break
                for packet in self.video.encode(item):
                    self.container.mux(packet)
                self.frames += 1
                self._push_audio(int(self.frames / self.fps * SAMPLE_RATE_HZ))
        except BaseException as exc:  # handed to the producer thread on its next call
            self.error = exc
            while self.queue.get() is not None:
                pass

    # producer side --------------------------------------------------------------------------
    def write(self, rgb: np.ndarray) -> None:
        import av

        if self.error is not None:
            raise self.error
        self.queue.put(av.VideoFrame.from_ndarray(rgb, format="rgb24"))

    def _finish(self) -> None:
        self.queue.put(None)
        self.worker.join()
        if self.error is not None:
            raise self.error
        self._push_audio(len(self.audio))
        for packet in self.video.encode(None):
            self.container.mux(packet)
        for packet in self.sound.encode(None):
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        if self.worker.is_alive():
            self.queue.put(None)
            self.worker.join()
        try:
            self.container.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self._finish()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
