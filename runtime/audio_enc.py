"""The `audio_enc` stage for the builtin family: weight-free speech features at video rate, causal.

Per 10 ms hop (32 ms Hann window at 16 kHz): log-mel (40 bands), RMS, band energies, spectral
centroid and an autocorrelation pitch track; hops are then averaged into video frames.

`FeatureStream` computes them incrementally as audio arrives: a hop needs 16 ms of audio past
its centre, a frame is complete once the first hop of the next frame exists. Every value depends
only on the samples and on running statistics up to that hop, and every hop is computed on its own
row (no BLAS, whose blocking depends on the batch size), so features are bit-identical whatever the
chunking. `encode` runs the same stream over a whole clip.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.phonetic import N_PHONES, PhoneHops

HOP = 160  # 10 ms
WIN = 512  # 32 ms
N_MELS = 40
BLOCK_HOPS = 1000  # hops computed per batch (10 s), so an hour never holds its whole spectrogram
F0_MIN_HZ, F0_MAX_HZ = 70.0, 400.0
LOUD_FLOOR = 1e-3  # hop RMS below this (-60 dBFS) is never voiced


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
    phones: np.ndarray  # [T, 40] mean phone log-posteriors (runtime/phonetic.py), or [T, 0] when not asked for

    @property
    def frames(self) -> int:
        return len(self.rms)

    def slice(self, a: int, b: int) -> "AudioFeatures":
        return AudioFeatures(self.fps, *(getattr(self, k)[a:b] for k in _ROW_FIELDS))


_ROW_FIELDS = ("rms", "rms_db", "mel", "low_ratio", "high_ratio", "centroid_hz", "f0_hz", "voiced", "phones")


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
_BAND = (_FREQS >= 300) & (_FREQS <= 4000)


def _hop_features(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Features of [n, 512] raw hop windows, each row on its own (einsum, not BLAS)."""
    win = frames * _WINDOW
    spec = np.fft.rfft(win, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)  # [n, 257]
    total = power.sum(1) + 1e-10
    out = {
        "rms": np.sqrt((frames ** 2).mean(1)),
        "mel": np.log10(np.einsum("nf,fm->nm", power, _MEL, optimize=False) + 1e-8),
        "low_ratio": power[:, _FREQS < 500].sum(1) / total,
        "high_ratio": power[:, _FREQS > 2500].sum(1) / total,
        "centroid_hz": (power[:, _BAND] * _FREQS[_BAND]).sum(1) / (power[:, _BAND].sum(1) + 1e-10),
    }
    # pitch: normalised autocorrelation from the power spectrum (zero-padded against wrap-around)
    ac = np.fft.irfft(np.abs(np.fft.rfft(win, n=2 * WIN, axis=1)) ** 2, axis=1)[:, :WIN]
    lo, hi = int(SAMPLE_RATE_HZ / F0_MAX_HZ), int(SAMPLE_RATE_HZ / F0_MIN_HZ)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    out["voicing"] = ac[np.arange(len(frames)), lag] / (ac[:, 0] + 1e-10)
    out["f0_hz"] = SAMPLE_RATE_HZ / lag
    return out


def frames_for(samples: int, fps: float) -> int:
    """Video frames of `samples` of 16 kHz audio: round(duration * fps), at least one."""
    return max(1, int(round(samples / SAMPLE_RATE_HZ * fps)))


def frame_of_hop(h: np.ndarray, fps: float) -> np.ndarray:
    return (h * HOP / SAMPLE_RATE_HZ * fps).astype(np.int64)


class FeatureStream:
    """Incremental `audio_enc`: `advance(audio)` consumes what the audio buffer makes computable and
    returns the newly completed frames. `audio` is any object with `available` (samples so far),
    `ended` and `read(a, b)` (zero-padded outside what exists), e.g. runtime/stream.py's timeline."""

    def __init__(self, fps: float, phones: bool = False):
        self.fps = fps
        # phone posteriors from the pretrained acoustic model (30 ms more look-ahead), when asked for
        self.phones = PhoneHops() if phones else None
        self.hop = 0  # next hop to compute
        self.frame = 0  # next frame to emit
        self.peak_rms = 0.0  # running peak of hop RMS (the voicing threshold's reference)
        self._pending: dict[str, list[np.ndarray]] = {}  # hops of frames not yet complete

    def first_hop(self, frame: int) -> int:
        """The first hop that belongs to `frame` or later."""
        h = max(0, int(frame * SAMPLE_RATE_HZ / (self.fps * HOP)) - 1)
        while frame_of_hop(np.array([h]), self.fps)[0] < frame:
            h += 1
        return h

    def samples_for(self, frames: int) -> int:
        """Timeline samples needed before frames 0..frames-1 are all complete."""
        last = self.first_hop(frames)  # the first hop of the next frame
        if self.phones is not None:
            return max(last * HOP + WIN // 2, self.phones.samples_for(last))
        return last * HOP + WIN // 2

    def rewind(self, frame: int) -> None:
        """Recompute from `frame` on (the audio after it was replaced)."""
        self.hop, self.frame = self.first_hop(frame), frame
        self._pending = {}
        if self.phones is not None:
            self.phones.rewind(self.hop)

    def hops_ready(self, available: int, ended: bool) -> int:
        """Hops computable now: hop h needs samples up to h*HOP + WIN/2."""
        if ended:
            return available // HOP + 1
        if self.phones is not None:
            return max(0, (available - self.phones.samples_for(0)) // HOP + 1)  # its window reaches furthest
        return max(0, (available - WIN // 2) // HOP + 1)

    def advance(self, audio) -> AudioFeatures | None:
        end_hop = self.hops_ready(audio.available, audio.ended)
        total_frames = frames_for(audio.available, self.fps) if audio.ended else None
        frames: list[AudioFeatures] = []
        while self.hop < end_hop:  # block by block, each turned into frames at once (memory stays flat)
            stop = min(end_hop, self.hop + BLOCK_HOPS)
            a0 = self.hop * HOP - WIN // 2
            chunk = audio.read(a0, (stop - 1) * HOP + WIN // 2).astype(np.float32)
            idx = np.arange(WIN)[None, :] + HOP * np.arange(stop - self.hop)[:, None]
            feats = _hop_features(chunk[idx])
            hops = np.arange(self.hop, stop)
            frame = frame_of_hop(hops, self.fps)
            if total_frames is not None:
                frame = np.minimum(frame, total_frames - 1)
            # voicing needs loudness relative to the running peak (causal, per hop)
            peak = np.maximum.accumulate(np.concatenate([[self.peak_rms], feats["rms"]]))[1:]
            self.peak_rms = float(peak[-1])
            feats["voiced"] = (feats["voicing"] > 0.45) & (feats["rms"] > np.maximum(LOUD_FLOOR, 0.1 * peak))
            feats["frame"] = frame
            del feats["voicing"]
            if self.phones is not None:
                feats["phones"] = self.phones.rows(audio, self.hop, stop)
                self.phones.trim(stop)
            self.hop = stop
            done = self._collect([feats], total_frames if self.hop >= end_hop else None)
            if done is not None:
                frames.append(done)
        if total_frames is not None and self.frame < total_frames:  # frames after the last hop (none in practice)
            done = self._collect([], total_frames)
            if done is not None:
                frames.append(done)
        return concat_features(frames, self.fps) if frames else None

    def _collect(self, blocks: list[dict[str, np.ndarray]], total_frames: int | None) -> AudioFeatures | None:
        for b in blocks:
            for k, v in b.items():
                self._pending.setdefault(k, []).append(v)
        if not self._pending:
            return None
        hop = {k: np.concatenate(v) for k, v in self._pending.items()}
        if total_frames is not None:
            hop["frame"] = np.minimum(hop["frame"], total_frames - 1)
            last = total_frames  # everything is final
        else:
            last = int(hop["frame"][-1])  # the newest frame may still get hops
        if last <= self.frame:
            self._pending = {k: [v] for k, v in hop.items()}
            return None
        done = hop["frame"] < last
        keep = {k: v[~done] for k, v in hop.items()}
        self._pending = {k: [v] for k, v in keep.items()} if len(keep["frame"]) else {}
        feats = self._to_frames({k: v[done] for k, v in hop.items()}, self.frame, last)
        self.frame = last
        return feats

    def _to_frames(self, hop: dict[str, np.ndarray], first: int, stop: int) -> AudioFeatures:
        """Average hops into frames first..stop-1 (a frame without hops gets zeros)."""
        n = stop - first
        f = hop["frame"] - first
        counts = np.maximum(np.bincount(f, minlength=n), 1)
        mean = lambda v: np.bincount(f, weights=v, minlength=n) / counts
        rms = np.sqrt(mean(hop["rms"] ** 2))
        mel = np.stack([mean(hop["mel"][:, i]) for i in range(N_MELS)], 1) if n else np.zeros((0, N_MELS))
        phones = (np.stack([mean(hop["phones"][:, i]) for i in range(N_PHONES)], 1) if "phones" in hop and n
                  else np.zeros((n, N_PHONES if self.phones is not None else 0)))
        voiced_hop = hop["voiced"]
        voiced = mean(voiced_hop.astype(np.float64)) >= 0.5
        f0 = np.where(voiced, np.bincount(f, weights=np.where(voiced_hop, hop["f0_hz"], 0), minlength=n)
                      / np.maximum(np.bincount(f, weights=voiced_hop, minlength=n), 1), 0.0)
        return AudioFeatures(
            fps=self.fps,
            rms=rms.astype(np.float32),
            rms_db=(20 * np.log10(rms + 1e-6)).astype(np.float32),
            mel=mel.astype(np.float32),
            low_ratio=mean(hop["low_ratio"]).astype(np.float32),
            high_ratio=mean(hop["high_ratio"]).astype(np.float32),
            centroid_hz=mean(hop["centroid_hz"]).astype(np.float32),
            f0_hz=f0.astype(np.float32),
            voiced=voiced,
            phones=phones.astype(np.float32),
        )


class ArrayAudio:
    """A finished clip seen through the timeline interface FeatureStream reads."""

    def __init__(self, audio: np.ndarray):
        self.audio, self.available, self.ended = audio, len(audio), True

    def read(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, 0), min(b, self.available)
        if hi > lo:
            out[lo - a:hi - a] = self.audio[lo:hi]
        return out


def concat_features(parts: list[AudioFeatures], fps: float) -> AudioFeatures:
    if not parts:
        empty = {"mel": (0, N_MELS), "phones": (0, 0)}
        return AudioFeatures(fps, *(np.zeros(empty.get(k, 0), np.bool_ if k == "voiced" else np.float32)
                                    for k in _ROW_FIELDS))
    return AudioFeatures(fps, *(np.concatenate([getattr(p, k) for p in parts]) for k in _ROW_FIELDS))


def encode(audio: np.ndarray, fps: float, phones: bool = False) -> AudioFeatures:
    """Speech features for each video frame of a whole clip (16 kHz mono float32): the stream, run once."""
    out = FeatureStream(fps, phones).advance(ArrayAudio(audio))
    return concat_features([out] if out is not None else [], fps)
