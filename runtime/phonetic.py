"""Phone posteriors from a pretrained acoustic model of real speech: CMU Sphinx's en-us model.

The `pocketsphinx` wheel ships an acoustic model trained on real recorded English (a phonetically
tied mixture model: per base phone, one codebook of 128 diagonal Gaussians in each of three feature
streams, cepstra, deltas and double deltas, and per senone a weight table over its phone's codebook).
This module reads those files and scores each 10 ms hop against the context-independent senones
(3 states of each of the 42 base phones), giving per-hop phone log-posteriors, no search, no
language model. It is the builtin motion model's view of *what* is said (mel features say *how*).

Front end (CMU Sphinx's MFCC as its `feat.params` configures it): pre-emphasis 0.97, 25.6 ms
Hamming window every 10 ms, 512-point power spectrum, 25 triangular mel filters 130-6800 Hz, natural
log, orthonormal DCT-II to 13 cepstra, sinusoidal lifter 22, cepstral mean removal, deltas
c[t+2]-c[t-2] and double deltas (c[t+3]-c[t-1])-(c[t+1]-c[t-3]). The mean removal is causal (a
running mean from a prior), so a stream and a whole clip give the same numbers; the deltas look 3
hops (30 ms) ahead.

`PhoneHops` works incrementally on any chunking (audio_enc.FeatureStream drives it): each hop is
computed on its own row with einsum (no BLAS), so results are bit-identical whatever the chunks.
"""
from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

import numpy as np

from talkrt.runtime.errors import TalkrtError

SR = 16000
HOP = 160
WIN = 410  # 0.025625 s, Sphinx's default window
NFFT = 512
N_CEP = 13
LOOKAHEAD_HOPS = 3  # double deltas need c[t+3]
CONTEXT_HOPS = 3  # and c[t-3]
CMN_PRIOR_HOPS = 100.0  # weight of the prior cepstral mean (1 s of speech)
ACOUSTIC_SCALE = 0.5  # frame log-likelihoods are overconfident; posteriors use a tempered softmax
LOG_FLOOR = -10.0  # log-posteriors are clipped here (a phone ruled out is simply "no")
# base phones the motion model sees: the 39 ARPAbet phones and silence (noise models folded into SIL)
PHONES = ("SIL", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
          "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V",
          "W", "Y", "Z", "ZH")
N_PHONES = len(PHONES)


def model_dir() -> Path:
    try:
        import pocketsphinx
    except ImportError as e:  # a core dependency; only a broken install gets here
        raise TalkrtError("pocketsphinx", "the acoustic model package is not installed (pip install pocketsphinx)") from e
    return Path(pocketsphinx.get_model_path()) / "en-us" / "en-us"


# --- model files ---------------------------------------------------------------------------------
def _s3_body(data: bytes) -> tuple[bytes, str]:
    """Skip a Sphinx-3 text header ("s3" ... "endhdr\\n"); returns (body, byte order)."""
    end = data.index(b"endhdr\n") + len(b"endhdr\n")
    magic = struct.unpack("<I", data[end:end + 4])[0]
    order = "<" if magic == 0x11223344 else ">"
    return data[end + 4:], order


def read_gaussians(path: Path) -> np.ndarray:
    """[codebooks, streams, densities, dims] float32 from a Sphinx-3 means or variances file (all
    streams of this model have the same width)."""
    body, o = _s3_body(path.read_bytes())
    n_cb, n_feat, n_dens = struct.unpack(o + "3i", body[:12])
    lens = struct.unpack(o + f"{n_feat}i", body[12:12 + 4 * n_feat])
    off = 12 + 4 * n_feat
    total = struct.unpack(o + "i", body[off:off + 4])[0]
    if len(set(lens)) != 1 or total != n_cb * n_dens * sum(lens):
        raise TalkrtError(path, "unexpected Gaussian file layout")
    vals = np.frombuffer(body, (o + "f4"), total, off + 4)
    return vals.reshape(n_cb, n_feat, n_dens, lens[0]).astype(np.float32)


def read_sendump(path: Path, n_streams: int) -> np.ndarray:
    """[streams, densities, senones] uint8 quantised mixture weights (PocketSphinx's sendump: a
    string header, then #densities, #senones and the bytes; weight = 1.0001 ** -(byte << 10))."""
    data = path.read_bytes()
    off = 0
    while True:
        (n,) = struct.unpack("<i", data[off:off + 4])
        off += 4
        if n == 0:
            break
        off += n
    n_dens, n_sen = struct.unpack("<2i", data[off:off + 8])
    off += 8
    if len(data) - off != n_streams * n_dens * n_sen:
        raise TalkrtError(path, "unexpected mixture-weight file layout")
    return np.frombuffer(data, np.uint8, n_streams * n_dens * n_sen, off).reshape(n_streams, n_dens, n_sen)


def read_ci_phones(path: Path) -> list[str]:
    """Base phone names, in model order, from a binary model definition (mdef)."""
    data = path.read_bytes()
    off = data.index(b"END FILE FORMAT DESCRIPTION") + len(b"END FILE FORMAT DESCRIPTION") + 1
    off = (off + 3) & ~3  # header padding
    (n_ci,) = struct.unpack("<i", data[off:off + 4])
    pos = data.index(b"+NSN+", off)  # the name table starts with the first (sorted) phone name
    names = data[pos:].split(b"\0")[:n_ci]
    return [n.decode() for n in names]


class AcousticModel:
    """The CI senones of Sphinx's en-us model, ready to score feature hops."""

    def __init__(self, directory: Path | None = None):
        d = Path(directory) if directory else model_dir()
        try:
            means = read_gaussians(d / "means")
            var = np.maximum(read_gaussians(d / "variances"), 1e-4)
            weights = read_sendump(d / "sendump", means.shape[1])
            phones = read_ci_phones(d / "mdef")
        except (OSError, ValueError, struct.error) as e:
            raise TalkrtError(d, f"cannot read the acoustic model ({e})") from e
        n_cb, self.n_streams, self.n_dens, self.dim = means.shape
        if len(phones) != n_cb:
            raise TalkrtError(d, "acoustic model phones and codebooks disagree")
        # log N(x; mu, var) = const - 0.5 * sum (x - mu)^2 / var, expanded into dot products
        prec = 1.0 / var
        proj = np.concatenate([-0.5 * prec, means * prec], -1).astype(np.float32)  # [cb, streams, dens, 2 * dim]
        self.n_cb = n_cb
        # [streams, 2 * dim, cb * dens]: one hop's [x^2, x] of a stream times this = its log densities
        self.proj_t = np.ascontiguousarray(proj.transpose(1, 3, 0, 2).reshape(self.n_streams, 2 * self.dim, -1))
        self.const = (-0.5 * (np.log(2 * np.pi * var).sum(-1) + (means ** 2 * prec).sum(-1))).astype(np.float32)
        # CI senones: state k of base phone p is senone 3p + k and mixes codebook p
        ci = weights[:, :, :3 * n_cb].astype(np.float32) * (-1024.0 * np.log(1.0001))  # natural-log weights
        self.log_w = np.ascontiguousarray(ci.reshape(self.n_streams, self.n_dens, n_cb, 3).transpose(2, 3, 0, 1))  # [cb, 3, streams, dens]
        # which codebook feeds each output phone (noise models +NSN+/+SPN+ join SIL by max)
        self.phones = phones
        self.groups = [[phones.index(p)] if p != "SIL" else [phones.index(q) for q in ("SIL", "+NSN+", "+SPN+") if q in phones]
                       for p in PHONES]

    def log_posteriors(self, feats: np.ndarray) -> np.ndarray:
        """[n, 39] Sphinx features -> [n, N_PHONES] tempered phone log-posteriors.

        A senone's stream likelihood is its best weighted Gaussian (the usual Viterbi shortcut for
        log sum w N), a phone's score its best state. Every hop is scored on its own (one
        vector-matrix product per hop and stream, the same call whatever the batch), so results do
        not depend on how hops were grouped."""
        n = len(feats)
        x = feats.astype(np.float32).reshape(n, self.n_streams, 1, self.dim)
        x = np.concatenate([x * x, x], -1)[:, :, 0]  # [n, streams, 2 * dim]
        ll = np.empty((n, self.n_streams, self.n_cb * self.n_dens), np.float32)
        for i in range(n):
            for s in range(self.n_streams):
                np.matmul(x[i, s], self.proj_t[s], out=ll[i, s])
        ll = ll.reshape(n, self.n_streams, self.n_cb, self.n_dens).transpose(0, 2, 1, 3) + self.const[None]
        phone = np.empty((n, self.n_cb), np.float32)
        for a in range(0, n, 32):  # [32, cb, 3 states, streams, dens] at a time stays in cache
            b = min(n, a + 32)
            phone[a:b] = (ll[a:b, :, None] + self.log_w[None]).max(-1).sum(-1).max(-1)
        grouped = np.stack([phone[:, g].max(-1) for g in self.groups], 1) * ACOUSTIC_SCALE
        grouped -= grouped.max(1, keepdims=True)
        return np.maximum(grouped - np.log(np.exp(grouped).sum(1, keepdims=True)), LOG_FLOOR).astype(np.float32)


@lru_cache(maxsize=1)
def acoustic_model() -> AcousticModel:
    return AcousticModel()


# --- MFCC front end ------------------------------------------------------------------------------
def _mel_filters() -> np.ndarray:
    """[NFFT//2+1, 25] Sphinx-style triangular filters, 130-6800 Hz, equal spacing on the mel scale."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    inv = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = inv(np.linspace(mel(130.0), mel(6800.0), 25 + 2))
    freqs = np.arange(NFFT // 2 + 1) * SR / NFFT
    fb = np.zeros((len(freqs), 25), np.float32)
    for i in range(25):
        lo, mid, hi = edges[i:i + 3]
        fb[:, i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None) * 2 / (hi - lo)
    return fb


_FB = _mel_filters()
_HAMMING = (0.54 - 0.46 * np.cos(2 * np.pi * np.arange(WIN) / (WIN - 1))).astype(np.float64)
_DCT = np.cos(np.pi * np.outer(np.arange(N_CEP), np.arange(25) + 0.5) / 25) * np.sqrt(2 / 25)
_DCT[0] *= np.sqrt(0.5)
_LIFTER = 1 + 11 * np.sin(np.pi * np.arange(N_CEP) / 22)
_DCT_LIFT = (_DCT * _LIFTER[:, None]).T  # [25, 13]


def cepstra(frames: np.ndarray) -> np.ndarray:
    """[n, WIN + 1] raw samples (float, full scale 32768; one sample before the window for the
    pre-emphasis) -> [n, 13] liftered MFCC, row by row."""
    x = (frames[:, 1:] - 0.97 * frames[:, :-1]) * _HAMMING
    spec = np.fft.rfft(x, NFFT, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    logmel = np.log(np.maximum(np.einsum("nf,fm->nm", power, _FB, optimize=False), 1e-5))
    return np.einsum("nm,mc->nc", logmel, _DCT_LIFT, optimize=False)


# the cepstral mean a stream starts from: PocketSphinx's own default (its `cmninit`, 40,3,-1)
CMN_PRIOR = np.array([40.0, 3.0, -1.0] + [0.0] * 10)


class PhoneHops:
    """Per-hop phone log-posteriors over a growing audio timeline (FeatureStream's `read` interface).

    Hop h is centred on sample h * HOP. Its features need the cepstra of hops h-3..h+3, each after
    causal mean removal: the mean of the speech hops' raw cepstra up to that hop (hops within 22 dB
    of the loudest so far count fully, quieter ones a little), started from CMN_PRIOR. Raw cepstra,
    running sums and peaks are kept per hop, so a rewind just truncates them and every value is a
    function of the samples alone, whatever the chunking."""

    def __init__(self, model: AcousticModel | None = None):
        self.model = model or acoustic_model()
        self.base = 0  # hop index of row 0 below
        self.raw = np.zeros((0, N_CEP))  # raw cepstra
        self.sums = np.zeros((0, N_CEP))  # running weighted sums (prior included)
        self.counts = np.zeros(0)  # running weights (prior included)
        self.peaks = np.zeros(0)  # running peak of c0

    @property
    def computed(self) -> int:
        """Hops whose raw cepstra exist: 0 .. computed-1."""
        return self.base + len(self.raw)

    def samples_for(self, hop: int) -> int:
        """Samples that must exist before hop `hop` has its features (30 ms of look-ahead)."""
        return (hop + LOOKAHEAD_HOPS) * HOP + WIN - WIN // 2

    def rows(self, audio, h0: int, h1: int) -> np.ndarray:
        """[h1-h0, N_PHONES] log-posteriors of hops h0..h1-1 (their look-ahead must be readable)."""
        self._extend(audio, h1 + LOOKAHEAD_HOPS)
        lo = max(h0 - CONTEXT_HOPS, 0)
        idx = np.arange(lo, h1 + LOOKAHEAD_HOPS) - self.base
        c = self.raw[idx] - self.sums[idx] / self.counts[idx, None]  # [m, 13], row j = hop lo + j
        hops = np.arange(h0, h1)
        get = lambda k: c[np.maximum(hops + k, 0) - lo]  # hops before the start repeat hop 0
        feats = np.concatenate([c[hops - lo], get(2) - get(-2), (get(3) - get(-1)) - (get(1) - get(-3))], 1)
        return self.model.log_posteriors(feats.astype(np.float32))

    def _extend(self, audio, stop: int) -> None:
        first = self.computed
        if stop <= first:
            return
        n = stop - first
        a0 = first * HOP - WIN // 2 - 1
        chunk = audio.read(a0, (stop - 1) * HOP - WIN // 2 + WIN).astype(np.float64) * 32768.0
        idx = np.arange(WIN + 1)[None, :] + HOP * np.arange(n)[:, None]
        raw = cepstra(chunk[idx])
        sums, counts, peaks = np.zeros((n, N_CEP)), np.zeros(n), np.zeros(n)
        s = self.sums[-1] if len(self.sums) else CMN_PRIOR * CMN_PRIOR_HOPS
        w_total = self.counts[-1] if len(self.counts) else CMN_PRIOR_HOPS
        peak = self.peaks[-1] if len(self.peaks) else -np.inf
        for i, row in enumerate(raw):  # sequential: the same sums whatever the chunking
            peak = max(peak, row[0])
            w = 1.0 if row[0] > peak - 25.0 else 0.05
            s = s + w * row
            w_total = w_total + w
            sums[i], counts[i], peaks[i] = s, w_total, peak
        self.raw = np.concatenate([self.raw, raw])
        self.sums = np.concatenate([self.sums, sums])
        self.counts = np.concatenate([self.counts, counts])
        self.peaks = np.concatenate([self.peaks, peaks])

    def rewind(self, hop: int) -> None:
        """Forget hops from `hop` on (their audio is replaced)."""
        keep = max(0, hop - self.base)
        self.raw, self.sums = self.raw[:keep], self.sums[:keep]
        self.counts, self.peaks = self.counts[:keep], self.peaks[:keep]

    def trim(self, hop: int) -> None:
        """Drop rows no hop from `hop` on needs (memory stays flat)."""
        drop = hop - CONTEXT_HOPS - 1 - self.base
        if drop > 1000:
            self.raw, self.sums = self.raw[drop:], self.sums[drop:]
            self.counts, self.peaks = self.counts[drop:], self.peaks[drop:]
            self.base += drop
