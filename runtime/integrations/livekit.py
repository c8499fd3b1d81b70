"""LiveKit Agents: a talkrt video generator for the avatar worker (`pip install 'talkrt[livekit]'`).

    runner = AvatarRunner(room, audio_recv=DataStreamAudioReceiver(room), video_gen=TalkrtVideoGenerator(avatar),
                          options=TalkrtVideoGenerator.avatar_options(avatar))

`push_audio` takes the agent's TTS frames (any rate, int16) and `AudioSegmentEnd`; iteration yields
each frame as an RGBA `rtc.VideoFrame`, then the speech audio it plays (16 kHz mono `rtc.AudioFrame`,
idle frames carry none), and `AudioSegmentEnd` right after the frame that plays a segment's last
sample, which is what the runner turns into playback-finished. `clear_buffer` is an interruption.
The face idles (live clock) between segments; TTS arrives in bursts, so no frame is dropped (the
`wait` policy: the runner's A/V synchroniser paces the stream).
"""
from __future__ import annotations

from collections import deque

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, VideoGenerator

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.stream import Stream


class TalkrtVideoGenerator(VideoGenerator):
    def __init__(self, avatar, controls=None):
        self.stream = Stream(avatar, controls, live=True, policy="wait")  # TTS arrives in bursts: lose no frame
        self.segment_ends: deque[int] = deque()  # timeline positions where pushed segments end
        self.size = avatar.frame_size
        self.epoch = 0  # interruptions so far: a frame read before one must not play its audio after it

    @staticmethod
    def avatar_options(avatar) -> AvatarOptions:
        w, h = avatar.frame_size
        return AvatarOptions(video_width=w, video_height=h, video_fps=avatar.fps, audio_sample_rate=SAMPLE_RATE_HZ,
                             audio_channels=1)

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            self.segment_ends.append(self.stream.mark())
            return
        pcm = np.frombuffer(frame.data, np.int16).reshape(-1, frame.num_channels)
        self.stream.push(pcm if frame.num_channels > 1 else pcm[:, 0], rate=frame.sample_rate, block=False)

    def clear_buffer(self) -> None:
        self.stream.interrupt()  # queued audio and frames go; the mouth closes
        self.epoch += 1
        self.segment_ends.clear()  # the runner reports the interrupted playback itself

    async def aclose(self) -> None:
        self.stream.close()

    async def __aiter__(self):
        w, h = self.size
        async for f in self.stream.aframes():
            epoch = self.epoch
            rgba = np.concatenate([f.image, np.full((h, w, 1), 255, np.uint8)], axis=2)
            yield rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, rgba.tobytes())
            if epoch != self.epoch:  # interrupted while this frame was out: its speech is dropped too
                continue
            if f.pushed:
                pcm = (np.clip(f.audio, -1, 1) * 32767).astype(np.int16)
                yield rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE_HZ, 1, len(pcm))
            end = f.sample + len(f.audio)
            while self.segment_ends and end >= self.segment_ends[0]:
                self.segment_ends.popleft()
                yield AudioSegmentEnd()
