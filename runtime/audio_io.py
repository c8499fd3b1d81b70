"""Speech loading: any rate, any channel count, WAV/FLAC/OGG/MP3 (and what FFmpeg reads) ->
16 kHz mono float32, decoded and resampled block by block so memory stays bounded.

One hour at 16 kHz mono float32 is 230 MB; the source is never held whole at its own rate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from talkrt.runtime.errors import InputError

SAMPLE_RATE_HZ = 16000
BLOCK_FRAMES = 1 << 16  # source frames per decoded block
MAX_DURATION_S = 4 * 3600
MIN_DURATION_S = 0.04  # one video frame at 25 fps


def _blocks_soundfile(path: Path) -> tuple[int, Iterator[np.ndarray]]:
    import soundfile as sf

    f = sf.SoundFile(str(path))
    rate = f.samplerate
    if f.frames == 0:
        f.close()
        return rate, iter(())

    def gen():
        with f:
            for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                yield block
    return rate, gen()


def _blocks_av(path: Path) -> tuple[int, Iterator[np.ndarray]]:
    import av

    container = av.open(str(path))
    if not container.streams.audio:
        container.close()
        raise InputError(path, "file has no audio stream")
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or stream.rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)

    def gen():
        with container:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1, 1)
    return rate, gen()


def _open_blocks(path: Path):
    import soundfile as sf

    try:
        return _blocks_soundfile(path)
    except sf.LibsndfileError:
        pass
    try:
        return _blocks_av(path)
    except InputError:
        raise
    except Exception:
        raise InputError(path, "not an audio file (or a format talkrt cannot read)") from None


def load_audio(path: str | Path, max_duration_s: float = MAX_DURATION_S) -> np.ndarray:
    """[N] float32 mono at 16 kHz. Errors: missing, not audio, empty, too long, NaN/inf samples."""
    import soxr

    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if not path.is_file():
        raise InputError(path, "is not a file")
    rate, blocks = _open_blocks(path)
    if not rate or rate < 4000:
        raise InputError(path, f"sample rate {rate} Hz is not usable (need at least 4000 Hz)")
    resampler = None if rate == SAMPLE_RATE_HZ else soxr.ResampleStream(rate, SAMPLE_RATE_HZ, 1, dtype="float32")
    # one growing output buffer (doubling), so the result is never held twice
    audio = np.empty(SAMPLE_RATE_HZ * 60, np.float32)
    total = 0
    limit = int(max_duration_s * SAMPLE_RATE_HZ)

    def append(chunk: np.ndarray) -> None:
        nonlocal audio, total
        if total + len(chunk) > len(audio):
            grown = np.empty(max(2 * len(audio), total + len(chunk)), np.float32)
            grown[:total] = audio[:total]
            audio = grown
        audio[total:total + len(chunk)] = chunk
        total += len(chunk)

    try:
        for block in blocks:
            if not np.isfinite(block).all():
                raise InputError(path, "audio contains NaN or infinite samples")
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono))
            append(mono)
            if total > limit:
                raise InputError(path, f"audio is longer than the limit of {max_duration_s / 3600:.1f} h")
        if resampler is not None:
            append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"audio is corrupt or cannot be decoded ({exc.__class__.__name__})") from None
    audio = audio[:total].copy() if total < len(audio) // 2 else audio[:total]
    if len(audio) < MIN_DURATION_S * SAMPLE_RATE_HZ:
        raise InputError(path, "audio is empty (no samples, or shorter than one video frame)")
    peak = float(np.abs(audio).max())
    if peak > 1.0:  # integer formats decode to [-1, 1]; float WAVs may exceed it
        audio /= peak
    return audio
