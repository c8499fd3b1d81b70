"""The sinks: H.264 MP4 with the speech muxed as AAC (PyAV, on a worker thread), and lossless
YUV4MPEG2 (y4m, 4:2:0) to a file or to stdout, one flushed FRAME per frame.

Files are written under a hidden temporary name beside the target and renamed only when complete;
on any failure the temporary file is removed and no output is left behind.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.errors import InputError

AAC_FRAME = 1024


def check_output_path(path: str | Path) -> Path:
    """Fail early (before any rendering) on an output path that cannot be written."""
    if str(path) == "-":
        return Path("-")
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".y4m"):
        raise InputError(path, "output must be an .mp4 or .y4m file (or - for y4m on stdout)")
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


def rgb_to_i420(rgb: np.ndarray) -> bytes:
    """[H, W, 3] uint8 RGB (even sides) -> planar Y, U, V (4:2:0), BT.601 as OpenCV converts it."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes()


class Y4mWriter:
    """YUV4MPEG2 to a file (temporary name, renamed when complete) or to stdout ('-'). The stream
    header is written at once, so a reader knows the stream is ready before the first frame."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float):
        rate = Fraction(fps).limit_denominator(1001)
        header = f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode()
        self.path = check_output_path(path)
        self.tmp = None
        if str(path) == "-":
            self.out = sys.stdout.buffer
        else:
            self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
            try:
                self.out = open(self.tmp, "wb")
            except OSError as exc:
                raise InputError(self.path, f"cannot write output ({exc.strerror or exc})") from None
        self.frames = 0
        self.out.write(header)
        self.out.flush()

    def write(self, rgb: np.ndarray) -> None:
        self.out.write(b"FRAME\n" + rgb_to_i420(rgb))
        self.out.flush()
        self.frames += 1

    def abort(self) -> None:
        if self.tmp is not None:
            self.out.close()
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "Y4mWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
            return
        if self.tmp is not None:
            self.out.close()
            os.replace(self.tmp, self.path)


def read_y4m(data: bytes) -> tuple[dict[str, str], list[bytes]]:
    """(header fields, frame payloads) of a y4m byte string; for tests and tools."""
    head, _, rest = data.partition(b"\n")
    fields = head.decode().split()
    if not fields or fields[0] != "YUV4MPEG2":
        raise InputError("y4m", "not a YUV4MPEG2 stream")
    info = {f[0]: f[1:] for f in fields[1:]}
    w, h = int(info["W"]), int(info["H"])
    size = w * h * 3 // 2
    frames = []
    while rest:
        tag, _, rest = rest.partition(b"\n")
        if not tag.startswith(b"FRAME") or len(rest) < size:
            raise InputError("y4m", f"truncated or corrupt frame {len(frames)}")
        frames.append(rest[:size])
        rest = rest[size:]
    return info, frames
