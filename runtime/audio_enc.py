"""The `audio_enc` stage for the builtin family: weight-free speech features at video rate.

Per 10 ms hop (32 ms Hann window at 16 kHz): log-mel (40 bands), RMS, band energies, spectral
centroid and an autocorrelation pitch track; then averaged into video frames. Audio is processed
in chunks so an hour of speech never holds its whole spectrogram (that would be ~370 MB).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ

HOP = 160  # 10 ms
WIN = 512  # 32 ms
N_MELS = 40
CHUNK_HOPS = 1000  # 10 s of audio per chunk
F0_MIN_HZ, F0_MAX_HZ = 70.0, 400.0


@dataclass(frozen=True)
class AudioFeatures:
    """Features at video rate; every array has T rows, T = round(duration * fps)."""

    fps: float
    rms: np.ndarray  # [T] linear RMS of the frame, full scale = 1
    rms_db: np.ndarray  # [T]
    mel: np.ndarray  # [T, 40] log10 mel energies
    low_ratio: np.ndarray  # [T] energy share below 500 Hz
    high_ratio: np.ndarray  # [T] energy share above 2.5 kHz
    centroid_hz: np.ndarray  # [T] spectral centroid of 300-4000 Hz
    f0_hz: np.ndarray  # [T] 0 where unvoiced
    voiced: np.ndarray  # [T] bool

    @property
    def frames(self) -> int:
        return len(self.rms)


def _mel_matrix(n_fft: int = WIN, n_mels: int = N_MELS, sr: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """[n_fft//2+1, n_mels] triangular filters on the HTK mel scale, 60 Hz - 7.6 kHz."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    inv = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = inv(np.linspace(mel(60.0), mel(7600.0), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((len(freqs), n_mels), np.float32)
    for i in range(n_mels):
        lo, mid, hi = edges[i:i + 3]
        fb[:, i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return fb


_MEL = _mel_matrix()
_FREQS = np.fft.rfftfreq(WIN, 1.0 / SAMPLE_RATE_HZ)
_WINDOW = np.hanning(WIN).astype(np.float32)


def _hop_features(chunk: np.ndarray) -> dict[str, np.ndarray]:
    """Features per 10 ms hop of a chunk already padded by WIN//2 on both sides."""
    n = (len(chunk) - WIN) // HOP + 1
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
    frames = chunk[idx] * _WINDOW  # [n, 512]
    spec = np.fft.rfft(frames, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)  # [n, 257]
    total = power.sum(1) + 1e-10
    band = (_FREQS >= 300) & (_FREQS <= 4000)
    out = {
        "rms": np.sqrt((chunk[idx] ** 2).mean(1)),
        "mel": np.log10(power @ _MEL + 1e-8),
        "low_ratio": power[:, _FREQS < 500].sum(1) / total,
        "high_ratio": power[:, _FREQS > 2500].sum(1) / total,
        "centroid_hz": (power[:, band] * _FREQS[band]).sum(1) / (power[:, band].sum(1) + 1e-10),
    }
    # pitch: normalised autocorrelation from the power spectrum (zero-padded to avoid wrap-around)
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, n=2 * WIN, axis=1)) ** 2, axis=1)[:, :WIN]
    lo, hi = int(SAMPLE_RATE_HZ / F0_MAX_HZ), int(SAMPLE_RATE_HZ / F0_MIN_HZ)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    strength = ac[np.arange(n), lag] / (ac[:, 0] + 1e-10)
    out["voicing"] = strength
    out["f0_hz"] = SAMPLE_RATE_HZ / lag
    return out


def encode(audio: np.ndarray, fps: float) -> AudioFeatures:
    """Speech features for each video frame of `audio` (16 kHz mono float32)."""
    n_hops = len(audio) // HOP + 1
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_hops, CHUNK_HOPS):
        stop = min(n_hops, start + CHUNK_HOPS)
        a0, a1 = start * HOP - WIN // 2, (stop - 1) * HOP + WIN // 2
        chunk = audio[max(a0, 0):max(min(a1, len(audio)), 0)]
        chunk = np.pad(chunk, (max(0, -a0), max(0, a1 - len(audio))))
        for k, v in _hop_features(chunk.astype(np.float32)).items():
            parts.setdefault(k, []).append(v)
    hop = {k: np.concatenate(v) for k, v in parts.items()}

    # hops -> video frames: average the hops whose centre falls inside each frame
    n_frames = max(1, int(round(len(audio) / SAMPLE_RATE_HZ * fps)))
    frame_of_hop = np.minimum((np.arange(len(hop["rms"])) * HOP / SAMPLE_RATE_HZ * fps).astype(np.int64), n_frames - 1)
    counts = np.maximum(np.bincount(frame_of_hop, minlength=n_frames), 1)
    mean = lambda v: (np.bincount(frame_of_hop, weights=v, minlength=n_frames) / counts)
    rms = np.sqrt(mean(hop["rms"] ** 2))
    mel = np.stack([mean(hop["mel"][:, i]) for i in range(N_MELS)], 1)
    loud = hop["rms"] > max(1e-3, 0.1 * np.percentile(hop["rms"], 95))
    voiced_hop = (hop["voicing"] > 0.45) & loud
    voiced = mean(voiced_hop.astype(np.float64)) >= 0.5
    f0 = np.where(voiced, np.bincount(frame_of_hop, weights=np.where(voiced_hop, hop["f0_hz"], 0), minlength=n_frames)
                  / np.maximum(np.bincount(frame_of_hop, weights=voiced_hop, minlength=n_frames), 1), 0.0)
    return AudioFeatures(
        fps=fps,
        rms=rms.astype(np.float32),
        rms_db=(20 * np.log10(rms + 1e-6)).astype(np.float32),
        mel=mel.astype(np.float32),
        low_ratio=mean(hop["low_ratio"]).astype(np.float32),
        high_ratio=mean(hop["high_ratio"]).astype(np.float32),
        centroid_hz=mean(hop["centroid_hz"]).astype(np.float32),
        f0_hz=f0.astype(np.float32),
        voiced=voiced,
    )
