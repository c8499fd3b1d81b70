"""The LiveKit Agents video generator in process, under the framework's own AvatarRunner, with the
framework's frame types (no LiveKit server: the room is a stand-in that accepts publications)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

rtc = pytest.importorskip("livekit.rtc")
pytest.importorskip("livekit.agents")

from livekit.agents.voice.avatar import AudioReceiver, AudioSegmentEnd, AvatarRunner  # noqa: E402

from talkrt.runtime.audio_io import load_audio  # noqa: E402
from talkrt.runtime.avatar import Avatar, AvatarOptions  # noqa: E402
from talkrt.runtime.integrations.livekit import TalkrtVideoGenerator  # noqa: E402


class Receiver(AudioReceiver):
    """What an agent's DataStream receiver would deliver: TTS frames, then the segment's end."""

    def __init__(self, frames):
        super().__init__()
        self.frames, self.events, self.cleared = frames, [], False
        self.on("clear_buffer", lambda: setattr(self, "cleared", True))  # the sender drops the rest, as LiveKit's does

    def notify_playback_started(self):
        self.events.append(("started",))

    def notify_playback_finished(self, playback_position: float, interrupted: bool):
        self.events.append(("finished", round(playback_position, 2), interrupted))

    async def __aiter__(self):
        for f in self.frames:
            if self.cleared:
                return
            yield f
            await asyncio.sleep(0.005)


class Publication:
    async def wait_for_subscription(self):
        return None


class Room:
    """Enough of rtc.Room for the runner: connected, and publishing succeeds."""

    def __init__(self):
        self.published = []

        class Participant:
            async def publish_track(inner, track, options):
                self.published.append(track)
                return Publication()

        self.local_participant = Participant()

    def isconnected(self):
        return True

    def on(self, *args):
        pass


def _tts_frames(speech: np.ndarray, rate: int = 24000):
    import soxr

    pcm = (soxr.resample(speech, 16000, rate) * 32767).astype(np.int16)
    n = rate // 50  # 20 ms frames, as TTS plugins send
    return [rtc.AudioFrame(pcm[a:a + n].tobytes(), rate, 1, len(pcm[a:a + n])) for a in range(0, len(pcm), n)]


@pytest.fixture(scope="module")
def avatar(portrait_path):
    return Avatar.prepare(portrait_path, AvatarOptions(crop=True))


def _under_runner(avatar, speech: np.ndarray, clear_after_s: float | None, total_s: float) -> list:
    """Run one TTS segment through the framework's AvatarRunner; optionally interrupt it (the
    agent's clear_buffer) after `clear_after_s`; returns the receiver's playback events."""

    async def main():
        gen = TalkrtVideoGenerator(avatar)
        receiver = Receiver(_tts_frames(speech) + [AudioSegmentEnd()])
        runner = AvatarRunner(Room(), audio_recv=receiver, video_gen=gen,
                              options=TalkrtVideoGenerator.avatar_options(avatar))
        await runner.start()
        if clear_after_s is not None:
            await asyncio.sleep(clear_after_s)
            receiver.emit("clear_buffer")  # what the agent's interruption sends
        await asyncio.sleep(total_s - (clear_after_s or 0.0))
        events = list(receiver.events)
        await gen.aclose()
        return events

    return asyncio.run(main())


def test_generator_under_the_avatar_runner(avatar, speech_path):
    events = _under_runner(avatar, load_audio(speech_path)[: int(1.5 * 16000)], None, 3.5)
    assert events[0] == ("started",)
    assert events[1][0] == "finished" and events[1][2] is False
    assert abs(events[1][1] - 1.5) < 0.1, events  # the runner counted the speech that played, from our audio frames


def test_runner_interruption_is_reported_as_interrupted(avatar, speech_path):
    events = _under_runner(avatar, load_audio(speech_path)[: 4 * 16000], 1.5, 2.5)
    assert events[0] == ("started",)
    assert events[1][0] == "finished" and events[1][2] is True and events[1][1] < 3.0
    # the cleared segment never "finishes" (an audio frame already inside the runner when the
    # interruption lands may still make the runner report a new start: its own race, not ours)
    assert not [e for e in events[2:] if e[0] == "finished"], events


def test_interruption_reports_and_closes_the_mouth(avatar, speech_path):
    speech = load_audio(speech_path)[: 4 * 16000]

    async def main():
        gen = TalkrtVideoGenerator(avatar)
        for f in _tts_frames(speech):
            await gen.push_audio(f)
        await gen.push_audio(AudioSegmentEnd())
        out, jaw_after = [], []
        interrupted = False
        async for item in gen:
            out.append(item)
            n_video = sum(isinstance(x, rtc.VideoFrame) for x in out)
            if n_video == 25 and not interrupted:
                gen.clear_buffer()
                interrupted = True
            if interrupted and isinstance(item, rtc.VideoFrame) and n_video > 25:
                jaw_after.append(gen.stream.stats.frames)
            if n_video >= 45:
                break
        await gen.aclose()
        return out

    out = asyncio.run(main())
    video = [x for x in out if isinstance(x, rtc.VideoFrame)]
    audio = [x for x in out if isinstance(x, rtc.AudioFrame)]
    assert (video[0].width, video[0].height, video[0].type) == (512, 512, rtc.VideoBufferType.RGBA)
    assert not any(isinstance(x, AudioSegmentEnd) for x in out)  # the cleared segment never "finished"
    # audio stops with the interruption: after it, the frames are idle (no speech audio)
    last_audio = max(i for i, x in enumerate(out) if isinstance(x, rtc.AudioFrame))
    assert sum(isinstance(x, rtc.VideoFrame) for x in out[:last_audio]) <= 26
    assert 20 <= len(audio) <= 26 and all(a.sample_rate == 16000 for a in audio)


def test_example_worker_builds_on_these_apis():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "livekit_avatar_worker.py"
    spec = importlib.util.spec_from_file_location("livekit_avatar_worker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports resolve against the installed framework
    assert asyncio.iscoroutinefunction(module.main)
