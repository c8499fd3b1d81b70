"""Pipecat: a frame processor placed after TTS that turns the bot's speech into the avatar's video
(`pip install 'talkrt[pipecat]'`).

    pipeline = Pipeline([..., tts, TalkrtVideoProcessor(avatar), transport.output()])

TTS audio frames are consumed (pushed into a live talkrt Stream) and come out again re-timed: each
`OutputImageRawFrame` (RGB) is followed by the `OutputAudioRawFrame` (16 kHz mono) that plays with
it, so the transport shows and plays them in sync. An `InterruptionFrame` interrupts the stream (the
mouth closes within ~100 ms) and is passed on; between utterances the face idles.
"""
from __future__ import annotations

import asyncio

import numpy as np
from pipecat.frames.frames import (CancelFrame, EndFrame, InterruptionFrame, OutputAudioRawFrame, OutputImageRawFrame,
                                   StartFrame, TTSAudioRawFrame)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.stream import Stream


class TalkrtVideoProcessor(FrameProcessor):
    def __init__(self, avatar, controls=None, **kwargs):
        super().__init__(**kwargs)
        self.avatar, self.controls = avatar, controls
        self.stream: Stream | None = None
        self._pump: asyncio.Task | None = None

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.stream = Stream(self.avatar, self.controls, live=True, policy="wait")  # TTS bursts: lose no frame
            await self.push_frame(frame, direction)
            self._pump = self.create_task(self._frames())
        elif isinstance(frame, TTSAudioRawFrame) and self.stream is not None:
            pcm = np.frombuffer(frame.audio, np.int16).reshape(-1, frame.num_channels)
            self.stream.push(pcm if frame.num_channels > 1 else pcm[:, 0], rate=frame.sample_rate, block=False)
        elif isinstance(frame, InterruptionFrame):
            if self.stream is not None:
                self.stream.interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _frames(self) -> None:
        w, h = self.avatar.frame_size
        async for f in self.stream.aframes():
            await self.push_frame(OutputImageRawFrame(image=f.image.tobytes(), size=(w, h), format="RGB"))
            if f.pushed:
                pcm = (np.clip(f.audio, -1, 1) * 32767).astype(np.int16)
                await self.push_frame(OutputAudioRawFrame(audio=pcm.tobytes(), sample_rate=SAMPLE_RATE_HZ, num_channels=1))

    async def _stop(self) -> None:
        if self._pump is not None:
            await self.cancel_task(self._pump)
            self._pump = None
        if self.stream is not None:
            await asyncio.to_thread(self.stream.close)
            self.stream = None

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop()
