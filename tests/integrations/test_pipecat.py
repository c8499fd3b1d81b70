"""The Pipecat processor in process, through Pipecat's own pipeline runner and frame types."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("pipecat")

from pipecat.frames.frames import (InterruptionFrame, OutputAudioRawFrame, OutputImageRawFrame,  # noqa: E402
                                   TTSAudioRawFrame)
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from talkrt.runtime.audio_io import load_audio  # noqa: E402
from talkrt.runtime.avatar import Avatar, AvatarOptions  # noqa: E402
from talkrt.runtime.integrations.pipecat import TalkrtVideoProcessor  # noqa: E402


def _tts(speech: np.ndarray, rate: int = 24000) -> list[TTSAudioRawFrame]:
    import soxr

    pcm = (soxr.resample(speech, 16000, rate) * 32767).astype(np.int16)
    n = rate // 10  # 100 ms chunks
    return [TTSAudioRawFrame(audio=pcm[a:a + n].tobytes(), sample_rate=rate, num_channels=1)
            for a in range(0, len(pcm), n)]


@pytest.fixture(scope="module")
def avatar(portrait_path):
    return Avatar.prepare(portrait_path, AvatarOptions(crop=True))


def test_tts_audio_becomes_frames_with_their_audio_retimed(avatar, speech_path):
    speech = load_audio(speech_path)[: 2 * 16000]
    down, _ = asyncio.run(run_test(TalkrtVideoProcessor(avatar), frames_to_send=_tts(speech) + [SleepFrame(sleep=3.5)]))
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    audio = [f for f in down if isinstance(f, OutputAudioRawFrame)]
    assert not any(isinstance(f, TTSAudioRawFrame) and not isinstance(f, OutputAudioRawFrame) and
                   type(f) is TTSAudioRawFrame for f in down)  # the TTS frames were consumed
    assert len(images) >= 60 and images[0].size == (512, 512) and images[0].format == "RGB"
    samples = sum(len(f.audio) // 2 for f in audio)
    assert abs(samples - len(speech)) <= 640 and all(f.sample_rate == 16000 for f in audio)
    # each audio frame directly follows the image it plays with
    for i, f in enumerate(down):
        if isinstance(f, OutputAudioRawFrame):
            assert isinstance(down[i - 1], OutputImageRawFrame)
    frames = np.stack([np.frombuffer(f.image, np.uint8).reshape(512, 512, 3)[300:420, 180:340] for f in images[:50]])
    assert frames.astype(np.float32).std(0).mean() > 2.0  # the mouth moved with the speech


def test_interruption_is_honoured_and_passed_on(avatar, speech_path):
    speech = load_audio(speech_path)[: 4 * 16000]
    sent = _tts(speech) + [SleepFrame(sleep=1.0), InterruptionFrame(), SleepFrame(sleep=1.5)]
    down, _ = asyncio.run(run_test(TalkrtVideoProcessor(avatar), frames_to_send=sent))
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    audio_after = [f for f in down[cut:] if isinstance(f, OutputAudioRawFrame)]
    images_after = [f for f in down[cut:] if isinstance(f, OutputImageRawFrame)]
    assert len(images_after) > 10  # the face goes on (idle)
    assert len(audio_after) <= 2  # the speech stopped with the interruption
    # the test's sink takes frames as fast as they come (no transport pacing), so some seconds of the
    # speech are out before the interruption arrives; the rest of it never is
    played = sum(len(f.audio) // 2 for f in down if isinstance(f, OutputAudioRawFrame))
    assert played < len(speech) - 8000
