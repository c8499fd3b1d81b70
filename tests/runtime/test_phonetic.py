"""The acoustic front end (runtime/phonetic.py): Sphinx's en-us model read and scored by talkrt."""
from pathlib import Path

import numpy as np
import pytest

from talkrt.runtime import phonetic as P
from talkrt.runtime.audio_enc import ArrayAudio, FeatureStream, concat_features, encode
from talkrt.runtime.audio_io import load_audio

REAL = Path(__file__).resolve().parents[3] / "shared" / "real-speech" / "goforward.wav"  # "go forward ten meters"


def sphinx_frames(audio: np.ndarray) -> np.ndarray:
    """Sphinx's own framing (frame t starts at sample 160 t) for cepstra() (pre-emphasis sample first)."""
    s = np.concatenate([[0.0], audio.astype(np.float64) * 32768])
    n = (len(audio) - P.WIN) // P.HOP + 1
    return np.stack([s[t * P.HOP:t * P.HOP + P.WIN + 1] for t in range(n)])


def test_model_files_parse():
    m = P.acoustic_model()
    assert len(m.phones) == 42 and "SIL" in m.phones and {"P", "B", "M", "AA"} <= set(m.phones)
    assert m.proj_t.shape == (3, 26, 42 * 128) and m.log_w.shape == (42, 3, 3, 128)
    # each CI senone's mixture weights over its codebook sum to ~1 in every stream (quantised)
    sums = np.exp(m.log_w.astype(np.float64)).sum(-1)
    assert np.all(np.abs(sums - 1) < 0.1), sums.min()


def test_cepstra_decode_like_sphinx_own_front_end():
    """Our MFCC fed to PocketSphinx's decoder (process_cep) recognise what its own front end does."""
    if not REAL.is_file():
        pytest.skip("shared/real-speech is not present")
    from pocketsphinx import Decoder

    audio = load_audio(REAL)
    dec = Decoder(samprate=16000, loglevel="FATAL")
    dec.start_utt()
    dec.process_raw((audio * 32768).astype(np.int16).tobytes(), full_utt=True)
    dec.end_utt()
    own = dec.hyp().hypstr
    dec.start_utt()
    dec.process_cep(P.cepstra(sphinx_frames(audio)).astype(np.float32).tobytes(), full_utt=True)
    dec.end_utt()
    assert own == "go forward ten meters"
    assert dec.hyp().hypstr == own


def test_posteriors_follow_the_phones_of_real_speech():
    if not REAL.is_file():
        pytest.skip("shared/real-speech is not present")
    from talkrt.runtime.evaluate.phones import align

    audio = load_audio(REAL)
    hops = ArrayAudio(audio)
    ph = P.PhoneHops()
    n = len(audio) // P.HOP
    lp = ph.rows(hops, 0, n)
    assert lp.shape == (n, P.N_PHONES) and np.all(lp <= 0) and np.all(lp >= P.LOG_FLOOR)
    np.testing.assert_allclose(np.exp(lp.astype(np.float64)).sum(1), 1, atol=0.02)
    best = np.array(P.PHONES)[lp.argmax(1)]
    hit = total = 0
    for name, start, end in align(audio, "go forward ten meters"):
        for h in range(int(start * 100), min(int(end * 100), n)):
            hit += best[h] == name.upper()
            total += 1
    assert total > 150 and hit / total > 0.45  # 40 classes: chance is 0.025; measured 0.62
    # leading silence reads as silence
    assert np.mean(best[:20] == "SIL") > 0.8


def test_phone_features_do_not_depend_on_chunking(speech_path):
    audio = load_audio(speech_path)[:16000 * 3]
    whole = encode(audio, 25.0, phones=True)
    assert whole.phones.shape == (whole.frames, P.N_PHONES)

    class Timeline:
        def __init__(self):
            self.available, self.ended = 0, False

        def read(self, a, b):
            return ArrayAudio(audio[:self.available]).read(a, b)

    tl, fs, parts = Timeline(), FeatureStream(25.0, phones=True), []
    rng = np.random.default_rng(0)
    while not tl.ended:
        tl.available = min(len(audio), tl.available + int(rng.integers(30, 4000)))
        tl.ended = tl.available == len(audio)
        out = fs.advance(tl)
        if out is not None:
            parts.append(out)
        # what was emitted never needed audio that had not arrived (30 ms of look-ahead included)
        assert tl.ended or fs.samples_for(fs.frame) <= tl.available
    streamed = concat_features(parts, 25.0)
    np.testing.assert_array_equal(streamed.phones, whole.phones)
    np.testing.assert_array_equal(streamed.mel, whole.mel)

    # a rewind (the audio from frame 30 on replaced by silence) recomputes exactly what a clip with
    # that audio gives (hops before the frame keep their cepstra: the cut is past their windows)
    fs.rewind(30)
    cut = fs.first_hop(30) * P.HOP + (P.WIN - P.WIN // 2) - P.HOP
    changed = audio.copy()
    changed[cut:] = 0
    audio[:] = changed
    again = fs.advance(tl)
    ref = encode(changed, 25.0, phones=True)
    np.testing.assert_array_equal(again.phones, ref.phones[30:])


def test_features_without_phones_are_empty(speech_path):
    f = encode(load_audio(speech_path)[:16000], 25.0)
    assert f.phones.shape == (f.frames, 0)
