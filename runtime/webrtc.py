"""WebRTC media for a live Stream (aiortc): the avatar's video and the speech audio as two tracks
that share the stream's clock, and the peer's microphone (or played file) fed into the stream.

Video frame i carries pts i/fps; its audio slice goes into the audio track's queue at the same
timeline position, so the two tracks stay in sync by construction (no clock arithmetic here).
"""
from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.stream import Stream

VIDEO_CLOCK_HZ = 90000
AUDIO_OUT_HZ = 48000
AUDIO_PTIME_S = 0.02  # 20 ms audio packets, as WebRTC sends them


class AvatarVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, stream: Stream, audio: "SpeechAudioTrack", on_first_frame=None):
        super().__init__()
        self.stream, self.audio, self.on_first_frame = stream, audio, on_first_frame
        self.next_index = self.next_sample = 0

    async def recv(self) -> av.VideoFrame:
        frame = None
        while frame is None:  # the stream paces itself (live clock); wait without blocking the loop
            if self.readyState != "live":
                raise MediaStreamError
            frame = self.stream.read(timeout=0)
            if frame is None:
                if self.stream.finished:
                    self.stop()
                    raise MediaStreamError
                await asyncio.sleep(0.005)
        if frame.index == 0 and self.on_first_frame is not None:
            self.on_first_frame()
        if frame.index > self.next_index:  # frames dropped (drop policy): keep the audio on the video clock
            gap = frame.sample - self.next_sample
            self.audio.feed(frame.index, np.zeros(max(0, gap), np.float32))
        self.next_index, self.next_sample = frame.index + 1, frame.sample + len(frame.audio)
        self.audio.feed(frame.index, frame.audio)
        out = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
        out.pts = int(round(frame.pts_s * VIDEO_CLOCK_HZ))
        out.time_base = fractions.Fraction(1, VIDEO_CLOCK_HZ)
        return out


class SpeechAudioTrack(MediaStreamTrack):
    """The audio that plays with the video frames, resampled to 48 kHz, in 20 ms packets."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        import soxr

        self.resampler = soxr.ResampleStream(SAMPLE_RATE_HZ, AUDIO_OUT_HZ, 1, dtype="float32")
        self.pending = np.zeros(0, np.float32)
        self.samples = 0  # pts of the next packet, 48 kHz
        self.ready = asyncio.Event()
        self.packet = int(AUDIO_OUT_HZ * AUDIO_PTIME_S)

    def stop(self) -> None:
        super().stop()
        self.resampler = None  # a native object: freed with the session

    def feed(self, index: int, audio16k: np.ndarray) -> None:
        if self.resampler is None:
            return
        self.pending = np.concatenate([self.pending, self.resampler.resample_chunk(audio16k)])
        if len(self.pending) >= self.packet:
            self.ready.set()

    async def recv(self) -> av.AudioFrame:
        while len(self.pending) < self.packet:
            if self.readyState != "live":
                raise MediaStreamError
            self.ready.clear()
            try:
                await asyncio.wait_for(self.ready.wait(), timeout=0.5)
            except asyncio.TimeoutError:
                pass
        chunk, self.pending = self.pending[:self.packet], self.pending[self.packet:]
        pcm = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = AUDIO_OUT_HZ
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, AUDIO_OUT_HZ)
        self.samples += self.packet
        return frame


async def feed_microphone(track: MediaStreamTrack, stream: Stream, silence_timeout_s: float) -> str:
    """Push the peer's audio into the stream until the track ends or stops arriving; returns why."""
    while True:
        try:
            frame = await asyncio.wait_for(track.recv(), timeout=silence_timeout_s)
        except asyncio.TimeoutError:
            return "peer went silent"
        except MediaStreamError:
            return "peer track ended"
        pcm = frame.to_ndarray()  # [channels, n] (planar) or [1, n * channels] (packed)
        channels = len(frame.layout.channels)
        if pcm.shape[0] == 1 and channels > 1:
            pcm = pcm.reshape(-1, channels)
        else:
            pcm = pcm.T
        if pcm.dtype != np.int16:
            pcm = pcm.astype(np.float32)
        try:
            stream.push(pcm if channels > 1 else pcm[:, 0], rate=frame.sample_rate, block=False)
        except Exception as exc:  # the stream is behind or closed: drop this packet, keep the session
            if stream.finished:
                return f"stream ended ({exc})"
