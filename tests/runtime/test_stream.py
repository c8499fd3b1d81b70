"""The streaming session: chunking never changes the video, idle and speech join without a jump,
interrupt, end of speech, backpressure, saved avatars, asyncio, cleanup."""
from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
from talkrt.runtime.avatar import Avatar, AvatarOptions
from talkrt.runtime.errors import InputError, TalkrtError
from talkrt.runtime.motion import FIELD
from talkrt.runtime.session import stream_file
from talkrt.runtime.stream import Stream

JAW = FIELD["jaw_open"]


@pytest.fixture(scope="module")
def avatar(portrait_path, analyzer):
    return Avatar.prepare(portrait_path, AvatarOptions(crop=True), "cpu", analyzer=analyzer)


@pytest.fixture(scope="module")
def clip(speech_path):
    return load_audio(speech_path)[: int(2.5 * SAMPLE_RATE_HZ)]


def _frames(avatar, samples, chunk_ms, **kw):
    return list(stream_file(Stream(avatar, policy="wait", **kw), samples, chunk_ms))


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x.image, y.image) and np.array_equal(x.audio, y.audio)
                                    and x.index == y.index and x.pts_s == y.pts_s for x, y in zip(a, b))


def test_chunk_size_does_not_change_the_video(avatar, clip):
    whole = _frames(avatar, clip, 1e9)
    assert len(whole) == round(len(clip) / SAMPLE_RATE_HZ * 25)
    for ms in (10, 100, 1000):
        assert _same(_frames(avatar, clip, ms), whole), f"{ms} ms chunks differ"
    # frames carry their time and exactly the audio that plays with them
    assert [f.pts_s for f in whole[:3]] == [0.0, 0.04, 0.08]
    assert np.array_equal(np.concatenate([f.audio for f in whole]), clip)
    assert np.std([f.motion[JAW] for f in whole]) > 0.05  # the mouth moves


def test_any_rate_and_sample_type_chunked_alike(avatar, clip):
    import soxr

    pcm44 = (soxr.resample(clip, SAMPLE_RATE_HZ, 44100) * 32767).astype(np.int16)

    def run(n):
        s = Stream(avatar, policy="wait")
        feeder = threading.Thread(target=lambda: ([s.push(pcm44[i:i + n], 44100) for i in range(0, len(pcm44), n)],
                                                  s.end_of_speech()))
        feeder.start()
        frames = list(s)
        feeder.join()
        s.close()
        return frames

    a, b = run(441), run(44100)
    assert _same(a, b) and len(a) == round(len(pcm44) / 44100 * 25)
    with pytest.raises(InputError, match="sample rate changed"):
        with Stream(avatar) as s:
            s.push(pcm44[:441], 44100)
            s.push(pcm44[:160], 16000)


def test_idle_speech_idle_joins_without_a_jump(avatar, speech_path):
    speech = load_audio(speech_path)[: 8 * SAMPLE_RATE_HZ]
    silence = np.zeros(SAMPLE_RATE_HZ, np.float32)
    audio = np.concatenate([silence, speech, silence, silence])
    motion = np.stack([f.motion for f in _frames(avatar, audio, 100)])
    onset, offset = 25, 25 + 8 * 25
    inside = np.abs(np.diff(motion[onset + 5:offset - 5], axis=0)).max(0)  # what the model does in speech
    for edge in (onset, offset):
        around = np.abs(np.diff(motion[edge - 5:edge + 6], axis=0)).max(0)
        # a step at the join may be as large as the model's own largest steps within speech, not larger
        assert (around <= 1.25 * inside + 1e-3).all(), f"jump at frame {edge}: {around - inside}"
    assert motion[5:20, JAW].max() < 0.02 and motion[-20:, JAW].max() < 0.02  # mouth shut while idle
    assert motion[onset:offset, JAW].max() > 0.3
    assert motion[-10:, JAW].max() < 0.02

def test_live_stream_idles_and_keeps_the_clock(avatar):
    with Stream(avatar, live=True) as s:
        start = time.perf_counter()
        frames = []
        while time.perf_counter() - start < 1.6:
            f = s.read(timeout=0.5)
            if f is not None:
                frames.append(f)
        elapsed = time.perf_counter() - start
    assert abs(len(frames) - elapsed * 25) < 12  # the frame clock ran without any audio
    m = np.stack([f.motion for f in frames])
    assert m[:, JAW].max() < 0.02  # mouth closed
    head = [FIELD[k] for k in ("head_pitch", "head_yaw", "head_roll")]
    assert np.ptp(m[:, head], axis=0).max() > 0.05  # not frozen
    assert s.stats.idle_frames >= len(frames) - 2


def test_interrupt_closes_the_mouth_and_reports_the_played_position(avatar, speech_path):
    speech = load_audio(speech_path)[: 5 * SAMPLE_RATE_HZ]
    s = Stream(avatar, live=True, policy="wait")
    s.push(speech)
    taken = [s.read(timeout=5) for _ in range(30)]
    idle = s.stats.idle_frames  # silence inserted before the push reached the stream, if any
    played = s.interrupt()
    assert 30 / 25 - idle / 25 - 1e-6 <= played <= 30 / 25 + 1e-6 and idle <= 4
    after = [s.read(timeout=5) for _ in range(10)]
    s.close()
    assert after[0].index == 30  # the clock goes on from the cut
    jaw = [f.motion[JAW] for f in after]
    assert max(jaw[3:]) < 0.02  # shut within ~100 ms (3 frames at 25 fps)
    assert max(f.motion[JAW] for f in taken) > 0.2


def test_end_of_speech_flushes_and_interrupt_after_it(avatar, clip):
    s = Stream(avatar)
    s.push(clip[:SAMPLE_RATE_HZ])
    s.end_of_speech()
    frames = list(s)
    assert len(frames) == 25 and s.read(timeout=0.1) is None
    assert s.interrupt() == pytest.approx(1.0)
    with pytest.raises(TalkrtError, match="ended"):
        s.push(clip[:160])
    s.close()


def test_slow_consumer_drop_policy_keeps_the_queue_bounded(avatar, speech_path):
    speech = load_audio(speech_path)[: 4 * SAMPLE_RATE_HZ]
    s = Stream(avatar, policy="drop")
    s.push(speech)
    s.end_of_speech()
    time.sleep(2.0)  # the reader is away while ~100 frames are rendered
    assert len(s._out) <= s.queue_frames + 1
    frames = list(s)
    s.close()
    assert s.stats.dropped > 0 and len(frames) + s.stats.dropped == 100
    assert all(a.index < b.index for a, b in zip(frames, frames[1:]))  # gaps, never reordering


def test_wait_policy_loses_nothing_and_push_is_bounded(avatar, clip):
    settings = avatar.settings
    s = Stream(avatar, policy="wait")
    s.max_buffer = SAMPLE_RATE_HZ  # one second of audio ahead of the frames at most
    s.push(clip[:SAMPLE_RATE_HZ])
    time.sleep(0.5)  # the worker fills the frame queue and waits for the reader
    with pytest.raises(TalkrtError, match="buffer is full"):
        s.push(clip[: 2 * SAMPLE_RATE_HZ], block=False)
    s.end_of_speech()
    frames = list(s)
    s.close()
    assert len(frames) == 25 and s.stats.dropped == 0 and settings.stream.policy in ("drop", "wait")


def test_saved_avatar_gives_the_same_frames_without_face_models(avatar, clip, tmp_path, monkeypatch):
    from talkrt.runtime import face

    path = avatar.save(tmp_path / "a.npz")
    monkeypatch.setattr(face.FaceAnalyzer, "analyze", lambda *a, **k: pytest.fail("face models ran on load"))
    loaded = Avatar.load(path)
    assert _same(_frames(loaded, clip, 100), _frames(avatar, clip, 100))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not an avatar"):
        Avatar.load(tmp_path / "junk.npz")


def test_two_streams_share_one_avatar(avatar, clip):
    results = {}

    def run(name, seed):
        from talkrt.runtime.motion import MotionControls

        results[name] = _frames(avatar, clip, 50, controls=MotionControls(seed=seed))

    threads = [threading.Thread(target=run, args=(n, seed)) for n, seed in (("a", 0), ("b", 0), ("c", 5))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert _same(results["a"], results["b"]) and not _same(results["a"], results["c"])


def test_asyncio_api_under_a_slow_consumer(avatar, clip):
    async def main():
        s = Stream(avatar, policy="wait")
        s.queue_frames = 2

        async def produce():
            for i in range(0, len(clip), 1600):
                await s.apush(clip[i:i + 1600])
            s.end_of_speech()

        got = []
        ticker = 0

        async def tick():  # the event loop stays free while frames are awaited
            nonlocal ticker
            while True:
                await asyncio.sleep(0.005)
                ticker += 1

        t = asyncio.create_task(tick())
        p = asyncio.create_task(produce())
        async for f in s.aframes():
            got.append(f.index)
            await asyncio.sleep(0.01)
        await p
        t.cancel()
        s.close()
        return got, ticker

    got, ticker = asyncio.run(main())
    assert got == list(range(round(len(clip) / SAMPLE_RATE_HZ * 25))) and ticker > 20


def test_errors_reach_the_caller_and_close_leaves_no_threads(avatar, clip):
    before = {t.ident for t in threading.enumerate()}
    s = Stream(avatar)
    with pytest.raises(InputError, match="NaN"):
        s.push(np.full(160, np.nan, np.float32))
    with pytest.raises(InputError, match="odd byte"):
        s.push(b"\x00\x01\x02")

    def broken(row):
        raise RuntimeError("renderer failed")

    s._renderer.render = broken
    s.push(clip[:SAMPLE_RATE_HZ])
    with pytest.raises(RuntimeError, match="renderer failed"):
        s.read(timeout=10)
    with pytest.raises(RuntimeError):
        s.push(clip[:160])
    s.close()
    for _ in range(3):
        with Stream(avatar, live=True) as live:
            live.read(timeout=1)
    time.sleep(0.1)
    assert {t.ident for t in threading.enumerate()} <= before
