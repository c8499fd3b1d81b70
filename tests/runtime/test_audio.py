from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from talkrt.runtime.audio_enc import encode
from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
from talkrt.runtime.errors import InputError


@pytest.fixture(scope="module")
def speech(speech_path):
    return load_audio(speech_path)


@pytest.mark.parametrize("ext,rate,channels", [("flac", 44100, 2), ("ogg", 22050, 1), ("mp3", 48000, 2), ("wav", 8000, 3)])
def test_formats_rates_channels(tmp_path, speech, ext, rate, channels):
    import soxr

    data = soxr.resample(speech, SAMPLE_RATE_HZ, rate)
    data = np.stack([data * (0.5 + 0.2 * c) for c in range(channels)], 1)
    path = tmp_path / f"s.{ext}"
    sf.write(path, data, rate)
    out = load_audio(path)
    assert out.dtype == np.float32
    assert abs(len(out) - len(speech)) < 0.05 * SAMPLE_RATE_HZ  # codec padding at most
    # the same speech: loudness envelopes agree
    n = min(len(out), len(speech)) // 1600 * 1600
    env = lambda a: np.sqrt((a[:n].reshape(-1, 1600) ** 2).mean(1))
    r = np.corrcoef(env(out), env(speech))[0, 1]
    assert r > 0.9


def test_missing_and_not_audio(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_audio(tmp_path / "x.wav")
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"RIFF not really audio at all" * 10)
    with pytest.raises(InputError, match="not an audio file"):
        load_audio(bad)


def test_image_given_as_audio(portrait_path):
    with pytest.raises(InputError, match="no audio stream|not an audio file"):
        load_audio(portrait_path)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match="empty"):
        load_audio(path)


def test_nan_samples(tmp_path):
    data = np.zeros(16000, np.float32)
    data[5000] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, data, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        load_audio(path)


def test_too_long_is_refused(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(InputError, match="longer than"):
        load_audio(path, max_duration_s=2.0)


def test_features_track_loudness(speech):
    f = encode(speech, 25.0)
    assert f.frames == round(len(speech) / SAMPLE_RATE_HZ * 25)
    assert f.mel.shape == (f.frames, 40)
    # silent stretches (the example has a pause) are far quieter than speech
    assert np.percentile(f.rms_db, 95) - np.percentile(f.rms_db, 5) > 40
    assert 80 < np.median(f.f0_hz[f.voiced]) < 250  # an adult voice


def test_long_audio_memory_is_bounded():
    """Features of 20 minutes of audio are computed chunk by chunk (peak far below the whole STFT)."""
    import tracemalloc

    audio = np.random.default_rng(0).standard_normal(16000 * 60 * 20).astype(np.float32) * 0.05
    tracemalloc.start()
    f = encode(audio, 25.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert f.frames == 30000
    whole_stft = 16000 * 60 * 20 / 160 * 257 * 4  # float32 power spectrogram: 123 MB
    assert peak < 0.7 * whole_stft
