"""Phone timings for `talkrt eval`: pocketsphinx forced alignment of a transcript, or of what its
recognizer hears when there is no transcript. Phones are ARPAbet names, times in seconds."""
from __future__ import annotations

import re

import numpy as np

from talkrt.runtime.errors import OptionError

SAMPLE_RATE_HZ = 16000
_decoders: dict[str, object] = {}


def _decoder(kind: str):
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise OptionError("--text", "phone timings need pocketsphinx: pip install 'talkrt[eval]'") from None
    if kind not in _decoders:
        if kind == "align":
            _decoders[kind] = Decoder(samprate=SAMPLE_RATE_HZ, bestpath=False, loglevel="FATAL", beam=1e-80, wbeam=1e-60,
                                      pbeam=1e-80)  # wide beams: a transcript is trusted
        else:
            _decoders[kind] = Decoder(samprate=SAMPLE_RATE_HZ, loglevel="FATAL")
    return _decoders[kind]


def _pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()


def words_of(text: str) -> str:
    """Lower-case words with punctuation removed (the dictionary's spelling)."""
    return " ".join(re.findall(r"[a-z']+", text.lower()))


def recognize(audio: np.ndarray) -> str:
    """What pocketsphinx's en-us recognizer hears (its word language model)."""
    d = _decoder("recognize")
    d.start_utt()
    d.process_raw(_pcm(audio), full_utt=True)
    d.end_utt()
    hyp = d.hyp()
    return hyp.hypstr if hyp is not None else ""


def align(audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """(phone, start_s, end_s) by forced alignment (two passes: words, then phones). Raises
    OptionError when a word is not in the dictionary or the alignment fails."""
    words = words_of(text)
    if not words:
        return []
    d = _decoder("align")
    raw = _pcm(audio)
    try:
        d.set_align_text(words)
        d.start_utt(); d.process_raw(raw, full_utt=True); d.end_utt()
        d.set_alignment()
        d.start_utt(); d.process_raw(raw, full_utt=True); d.end_utt()
        phones = [(p.name, p.start / 100.0, (p.start + p.duration) / 100.0) for w in d.get_alignment() for p in w]
    except (RuntimeError, ValueError, KeyError) as exc:
        raise OptionError("--text", f"could not align the transcript to the audio ({' '.join(str(exc).split())})") from None
    return phones


def phones_for(audio: np.ndarray, text: str | None) -> tuple[list[tuple[str, float, float]], str]:
    """Phones and where they came from: 'transcript' (aligned text) or 'recognized' (recognizer's
    words, then aligned); an empty list when nothing is recognized."""
    if text is not None:
        return align(audio, text), "transcript"
    heard = recognize(audio)
    if not words_of(heard):
        return [], "recognized"
    try:
        return align(audio, heard), "recognized"
    except OptionError:
        return [], "recognized"
