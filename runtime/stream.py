"""The streaming session: PCM audio in, timestamped frames out; everything else consumes it.

    push(pcm) ─▶ AudioTimeline (16 kHz) ─▶ motion stream (family: audio_enc + motion, window by window)
              ─▶ renderer (warp, decode, paste) ─▶ bounded frame queue ─▶ Frame(index, pts_s, image, audio)

One worker thread per stream runs the pipeline. Frame i plays the timeline's samples
[round(i*16000/fps), round((i+1)*16000/fps)) and is shown at i/fps; a clip of d seconds makes
exactly round(d*fps) frames. Every stage is causal with a fixed look-ahead and keyed by frame
index, so the frames depend on the audio, the seed and the profile, never on the chunking.

Live streams (`live=True`) keep a frame clock: when the audio for the next frame is late, the
timeline is filled with silence, so the face idles (blinks, breathes, moves a little, mouth shut)
instead of freezing, and speech that arrives later joins through the same motion model.
A slow consumer meets the profile's policy: `drop` discards the oldest queued frame (live video),
`wait` holds the worker (no frame lost; pushed audio then waits past `max_buffer_s`).
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator

import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.errors import InputError, OptionError, TalkrtError


@dataclass(frozen=True)
class Frame:
    index: int
    pts_s: float  # presentation time: index / fps
    image: np.ndarray  # [H, W, 3] uint8 RGB, owned by the frame
    audio: np.ndarray  # [n] float32 16 kHz mono: the samples that play with this frame
    motion: np.ndarray  # the family's motion row this frame was rendered from (builtin: MOTION_FIELDS)
    sample: int = 0  # timeline position (16 kHz samples) of the frame's first audio sample
    pushed: int = 0  # how many of its audio samples were pushed speech (the rest: idle silence)


@dataclass
class StreamStats:
    frames: int = 0
    dropped: int = 0  # frames discarded by the drop policy
    idle_frames: int = 0  # frames rendered from inserted silence (live)
    first_frame_s: float | None = None  # first push -> first frame ready (wall clock)
    stage_ms: dict[str, float] = field(default_factory=lambda: {"audio_enc+motion": 0.0, "render": 0.0})
    over_budget: dict[str, int] = field(default_factory=lambda: {"audio_enc+motion": 0, "render": 0})  # frames over
    # the profile's per-frame budgets (stream.budget_motion_ms, budget_render_ms)


class AudioTimeline:
    """The stream's audio at 16 kHz: appended at the end, read anywhere still held (zero-padded
    outside), trimmed from the front as frames leave so memory stays flat."""

    def __init__(self):
        self.base = 0  # timeline index of buf[0]
        self.buf = np.zeros(SAMPLE_RATE_HZ * 4, np.float32)
        self.size = 0
        self.ended = False
        self.speech: list[list[int]] = []  # [timeline start, samples] of pushed (not inserted) audio
        self.speech_trimmed = 0  # pushed samples in runs trimmed away

    @property
    def available(self) -> int:
        return self.base + self.size

    def append(self, x: np.ndarray, pushed: bool = True) -> None:
        if len(x) == 0:
            return
        if pushed:
            if self.speech and self.speech[-1][0] + self.speech[-1][1] == self.available:
                self.speech[-1][1] += len(x)
            else:
                self.speech.append([self.available, len(x)])
        if self.size + len(x) > len(self.buf):
            grown = np.zeros(max(2 * len(self.buf), self.size + len(x)), np.float32)
            grown[:self.size] = self.buf[:self.size]
            self.buf = grown
        self.buf[self.size:self.size + len(x)] = x
        self.size += len(x)

    def read(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(max(0, b - a), np.float32)
        lo, hi = max(a, self.base), min(b, self.available)
        if hi > lo:
            out[lo - a:hi - a] = self.buf[lo - self.base:hi - self.base]
        return out

    def truncate(self, n: int) -> None:
        """Drop everything from timeline sample n on (interrupt)."""
        n = max(n, self.base)
        self.size = min(self.size, n - self.base)
        self.speech = [[s, min(c, n - s)] for s, c in self.speech if s < n]

    def mark(self) -> int:
        """The timeline position of the end of what has been appended so far."""
        return self.available

    def trim(self, before: int) -> None:
        drop = before - self.base
        keep = [run for run in self.speech if run[0] + run[1] > before] or self.speech[-1:]
        self.speech_trimmed += sum(c for s, c in self.speech) - sum(c for s, c in keep)
        self.speech = keep
        if drop > SAMPLE_RATE_HZ:  # in steps of at least a second
            self.buf[:self.size - drop] = self.buf[drop:self.size].copy()
            self.size -= drop
            self.base = before

    def speech_before(self, n: int) -> int:
        """Pushed samples (not inserted silence) in timeline [0, n), for n past what was trimmed."""
        return self.speech_trimmed + int(sum(max(0, min(c, n - s)) for s, c in self.speech))


def sample_of_frame(i: int, fps: float) -> int:
    return int(round(i * SAMPLE_RATE_HZ / fps))


class _Converter:
    """Caller PCM (int16 or float, any rate, mono or [n, channels]) -> 16 kHz float32 mono."""

    def __init__(self):
        self.rate: int | None = None
        self.resampler = None

    def __call__(self, pcm: Any, rate: int) -> np.ndarray:
        if isinstance(pcm, (bytes, bytearray, memoryview)):
            if len(pcm) % 2:
                raise InputError("audio chunk", "raw PCM must be whole 16-bit samples (odd byte count)")
            pcm = np.frombuffer(pcm, "<i2")
        x = np.asarray(pcm)
        if x.ndim == 2:
            x = x.mean(axis=1, dtype=np.float32) if x.dtype.kind == "f" else x.astype(np.float32).mean(axis=1)
            x = x if pcm.dtype.kind == "f" else x / 32768.0
        elif x.ndim != 1:
            raise InputError("audio chunk", f"must be 1-D (or [samples, channels]), got shape {x.shape}")
        elif x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        elif x.dtype.kind == "f":
            x = x.astype(np.float32)
        else:
            raise InputError("audio chunk", f"samples must be int16 or float, got {x.dtype}")
        if not np.isfinite(x).all():
            raise InputError("audio chunk", "contains NaN or infinite samples")
        if not 4000 <= rate <= 384000:
            raise InputError("audio chunk", f"sample rate {rate} Hz is not usable (4000 to 384000)")
        if self.rate is None:
            self.rate = rate
            if rate != SAMPLE_RATE_HZ:
                import soxr

                self.resampler = soxr.ResampleStream(rate, SAMPLE_RATE_HZ, 1, dtype="float32")
        elif rate != self.rate:
            raise InputError("audio chunk", f"sample rate changed from {self.rate} to {rate} Hz within a stream")
        x = np.clip(x, -1.0, 1.0)
        return self.resampler.resample_chunk(x) if self.resampler is not None else x

    def flush(self) -> np.ndarray:
        if self.resampler is None:
            return np.zeros(0, np.float32)
        return self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)


_END = object()
IDLE_GRACE_S = 0.1  # a frame is idled this long after it is due (a push right after opening starts on speech)


class _Snapshot:
    """The timeline as it was when taken: what the worker may read while the producer appends."""

    def __init__(self, timeline: AudioTimeline):
        self.timeline, self.available, self.ended = timeline, timeline.available, timeline.ended

    def read(self, a: int, b: int) -> np.ndarray:
        out = self.timeline.read(a, min(b, self.available))
        return np.concatenate([out, np.zeros(b - a - len(out), np.float32)]) if len(out) < b - a else out


class Stream:
    """One live conversation with an avatar. Thread-safe: push from one thread, read from another.

    `push` / `end_of_speech` / `interrupt` / `close` feed it; iterate it (or `read()`, or `async for`
    over `aframes()`) for frames. Errors in the pipeline are raised to the reader (and by `push`)."""

    def __init__(self, avatar, controls=None, live: bool = False, settings=None, policy: str | None = None):
        from talkrt.runtime.motion import MotionControls

        self.avatar = avatar
        self.settings = settings or avatar.settings
        st = self.settings.stream
        self.fps = avatar.fps
        self.live = live
        self.policy = policy or st.policy
        if self.policy not in ("drop", "wait"):
            raise OptionError("policy", f"must be drop or wait, got {self.policy!r}")
        self.controls = controls or MotionControls(steps=self.settings.steps)
        self.queue_frames = st.queue_frames
        self.max_buffer = int(st.max_buffer_s * SAMPLE_RATE_HZ)
        self.stats = StreamStats()
        self.timeline = AudioTimeline()
        self._convert = _Converter()
        self._motion = avatar.family.motion_stream(avatar, self.controls, self.settings)
        self._renderer = avatar.renderer()
        self._rows: deque[np.ndarray] = deque()  # committed motion rows not yet rendered
        self._next_row = 0  # frame index of _rows[0]
        self._out: deque = deque()
        self._taken = 0  # frames handed to the reader (next index it will see, drops aside)
        self._lock = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self._interrupt = False
        self._done = False
        self._first_push: float | None = None
        self._clock0 = time.perf_counter()
        self._worker = threading.Thread(target=self._run, name="talkrt-stream", daemon=True)
        self._worker.start()

    # producer side ------------------------------------------------------------------------------
    def push(self, pcm: Any, rate: int = SAMPLE_RATE_HZ, block: bool = True) -> None:
        """Append speech: int16 or float samples (or raw int16 LE bytes) at `rate`, any chunk size."""
        x = self._convert(pcm, rate)
        with self._lock:
            self._check()
            if self.timeline.ended:
                raise OptionError("push", "the stream has ended (end_of_speech was called)")
            while 0 < (ahead := self.timeline.available - sample_of_frame(self._next_row, self.fps)) \
                    and ahead + len(x) > self.max_buffer:
                if not block:
                    raise TalkrtError("push", "audio buffer is full (the stream is behind real time)")
                self._lock.wait(0.05)
                self._check()
            if self._first_push is None and len(x):
                self._first_push = time.perf_counter()
            self.timeline.append(x)
            self._lock.notify_all()

    def mark(self) -> int:
        """Timeline position (16 kHz samples) just after the audio pushed so far: a frame with
        `frame.sample + len(frame.audio) >= mark` plays the end of it (voice agents: segment ends)."""
        with self._lock:
            return self.timeline.mark()

    def end_of_speech(self) -> None:
        """No more audio: the last frames come out without waiting for more."""
        tail = self._convert.flush()
        with self._lock:
            self._check()
            self.timeline.append(tail)
            self.timeline.ended = True
            self._lock.notify_all()

    def interrupt(self) -> float:
        """Drop queued audio and frames; the mouth closes within about 100 ms. Returns the seconds of
        pushed speech that were played (handed to the reader) before the cut."""
        with self._lock:
            self._check()
            if self._done:
                return self.timeline.speech_before(sample_of_frame(self._taken, self.fps)) / SAMPLE_RATE_HZ
            self._interrupt = True
            self._lock.notify_all()
            while self._interrupt and self._error is None and not self._closed:
                self._lock.wait(0.05)
            self._check()
            return self.timeline.speech_before(sample_of_frame(self._taken, self.fps)) / SAMPLE_RATE_HZ

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout=10)
        self._out.clear()
        self._rows.clear()
        self.timeline = AudioTimeline()
        self._convert = _Converter()  # frees the resampler (a native object)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise OptionError("stream", "is closed")

    # reader side -------------------------------------------------------------------------------
    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame; None at the end of the stream (or on timeout)."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        with self._lock:
            while not self._out:
                if self._error is not None:
                    raise self._error
                if self._done or self._closed:
                    return None
                left = None if deadline is None else deadline - time.perf_counter()
                if left is not None and left <= 0:
                    return None
                self._lock.wait(0.05 if left is None else min(left, 0.05))
            item = self._out.popleft()
            self._lock.notify_all()
            if item is _END:
                self._out.appendleft(_END)
                return None
            self._taken = item.index + 1
            return item

    def __iter__(self) -> Iterator[Frame]:
        while (f := self.read()) is not None:
            yield f

    @property
    def finished(self) -> bool:
        """True once the last frame has been read (or the stream was closed)."""
        with self._lock:
            if self._error is not None:
                raise self._error
            return self._closed or (self._done and (not self._out or self._out[0] is _END))

    async def apush(self, pcm: Any, rate: int = SAMPLE_RATE_HZ) -> None:
        await asyncio.to_thread(self.push, pcm, rate)

    async def aframes(self) -> AsyncIterator[Frame]:
        """Frames for asyncio code; the event loop is never blocked."""
        while True:
            frame = self.read(timeout=0)
            if frame is None:
                if self.finished:
                    return
                frame = await asyncio.to_thread(self.read, 0.1)
                if frame is None:
                    continue
            yield frame

    # worker ------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # handed to the reader and the producer
            with self._lock:
                self._error = exc
                self._lock.notify_all()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                if self._interrupt:
                    self._do_interrupt()
                ended = self.timeline.ended
            t = time.perf_counter()
            with self._lock:  # the producer appends meanwhile: the motion stream reads a snapshot
                view = _Snapshot(self.timeline)
            rows = self._motion.advance(view)
            if len(rows):
                ms = (time.perf_counter() - t) * 1000
                self.stats.stage_ms["audio_enc+motion"] += ms
                if ms / len(rows) > self.settings.stream.budget_motion_ms:
                    self.stats.over_budget["audio_enc+motion"] += len(rows)
                with self._lock:
                    self._rows.extend(rows)
            if self._rows:
                self._render_one()
                continue
            with self._lock:
                if ended and self._motion.frames_done >= self._motion.total_frames(self.timeline):
                    self._done = True
                    self._out.append(_END)
                    self._lock.notify_all()
                    return
                if self.live and not self.timeline.ended and not self._interrupt:
                    self._idle_fill()
                if not (self._interrupt or self._closed or self.timeline.ended != ended):
                    self._lock.wait(0.005 if self.live else 0.05)

    def _idle_fill(self) -> None:
        """Live: when the next frame is due and its audio has not come, insert silence for it."""
        due = self._clock0 + self._next_row / self.fps + IDLE_GRACE_S
        if time.perf_counter() < due:
            return
        need = self._motion.samples_needed()
        if need > self.timeline.available:
            n = need - self.timeline.available
            self.timeline.append(np.zeros(n, np.float32), pushed=False)
            self.stats.idle_frames += int(round(n * self.fps / SAMPLE_RATE_HZ))

    def _render_one(self) -> None:
        row = self._rows.popleft()
        i = self._next_row
        t = time.perf_counter()
        image = self._renderer.render(row).copy()
        ms = (time.perf_counter() - t) * 1000
        self.stats.stage_ms["render"] += ms
        self.stats.over_budget["render"] += ms > self.settings.stream.budget_render_ms
        a, b = sample_of_frame(i, self.fps), sample_of_frame(i + 1, self.fps)
        with self._lock:
            if self.timeline.ended and i + 1 >= self._motion.total_frames(self.timeline):
                b = self.timeline.available  # the last frame carries the clip's tail
        with self._lock:
            pushed = self.timeline.speech_before(b) - self.timeline.speech_before(a)
        frame = Frame(i, i / self.fps, image, self.timeline.read(a, b), row, a, pushed)
        with self._lock:
            self._next_row = i + 1
            while len(self._out) >= self.queue_frames and not self._closed and not self._interrupt:
                if self.policy == "drop":
                    self._out.popleft()
                    self.stats.dropped += 1
                    break
                self._lock.wait(0.05)
                if self.live:  # the clock waits with the consumer
                    self._clock0 += 0.05
            if self._closed or self._interrupt:
                return
            self._out.append(frame)
            self.stats.frames += 1
            if self.stats.first_frame_s is None and self._first_push is not None:
                self.stats.first_frame_s = time.perf_counter() - self._first_push
            held = min(sample_of_frame(self._taken, self.fps), self._motion.samples_held())
            self.timeline.trim(held - SAMPLE_RATE_HZ // 2)
            self._lock.notify_all()

    def _do_interrupt(self) -> None:
        """(lock held) Cut at the first frame the reader has not taken: queued frames, committed rows
        and audio past it go; the next frames continue from there on silence or new speech."""
        cut = self._taken
        self._out.clear()
        self._rows.clear()
        self.timeline.truncate(sample_of_frame(cut, self.fps))
        self.timeline.ended = False
        self._motion.rewind(cut, self.timeline)
        self._next_row = cut
        if self.live:
            self._clock0 = time.perf_counter() - cut / self.fps
        self._interrupt = False
        self._lock.notify_all()
