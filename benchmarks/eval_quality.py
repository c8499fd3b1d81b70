"""What a viewer sees, measured with a detector that is not the product's own (dlib).

For each portrait x speech pair: render with talkrt, then on every frame run dlib's 68-point shape
predictor and its 128-d face embedding, and report
  - lip sync: Pearson r between inner-mouth aperture and the speech RMS envelope, best lag in +-3 frames;
    with --heldout, also against the phonetic mouth opening of held-out utterances (target_r);
  - silence: mean aperture in silent stretches / in voiced ones (above the closed-mouth baseline);
  - identity: the largest per-frame embedding distance to the photo (dlib's same-person threshold is 0.6);
  - stillness: mean absolute change over time of the image border band (outer 8% of each side), in 1/255;
  - blinks per minute, from dips of the eye aspect ratio.

Needs the optional evaluation extra (dlib is built from source, about 11 minutes):
    pip install "setuptools<81" dlib face-recognition-models
    python benchmarks/eval_quality.py --portrait examples/portrait.jpg --speech examples/speech.wav [--motion heuristic]
Without --speech it synthesizes held-out sentences with several espeak-ng voices.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_enc import encode
from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
from talkrt.runtime.motion import MotionControls
from talkrt.runtime.session import SessionOptions, generate

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "Good morning. My name is Alex, and today I would like to tell you about the weather on Mars.",
    "Peter picked a peck of pickled peppers, but nobody believed him. Maybe next time!",
    "We will meet by the old mill at nine; bring a map, some bread, and plenty of water.",
]
VOICES = ["en-us", "en-us+f3", "en-gb+m4", "en-us+f5"]


def dlib_models():
    import dlib
    from importlib import resources

    base = resources.files("face_recognition_models") / "models"
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(base / "shape_predictor_68_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(base / "dlib_face_recognition_resnet_model_v1.dat")))


def speak(text: str, voice: str, path: Path) -> None:
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path), "pad", "0.8", "1.0"], check=True)
    raw.unlink()


def read_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _best_lag_r(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    lags = range(-3, 4)
    rs = [np.corrcoef(np.roll(a, -lag)[3:-3], b[3:-3])[0, 1] for lag in lags]
    i = int(np.nanargmax(rs))
    return float(rs[i]), list(lags)[i]


def measure(frames, photo, audio, fps, models, target_opening=None) -> dict:
    import dlib

    detector, shaper, embedder = models
    boxes = detector(photo, 1)
    if not boxes:
        raise SystemExit("dlib finds no face in the photo")
    box = max(boxes, key=lambda r: r.width() * r.height())
    ref = np.array(embedder.compute_face_descriptor(photo, shaper(photo, box)))
    aperture, ear, dist = [], [], []
    for i, fr in enumerate(frames):
        # the detection nearest the photo's face (dlib's HOG also fires on e.g. a sleeve patch)
        found = [r for r in detector(fr, 0) if abs(r.center().x - box.center().x) + abs(r.center().y - box.center().y) < box.width()]
        b = found[0] if found else box
        s = shaper(fr, b)
        p = np.array([[s.part(k).x, s.part(k).y] for k in range(68)], float)
        iod = np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0))
        aperture.append(np.mean([np.linalg.norm(p[a] - p[b_]) for a, b_ in ((61, 67), (62, 66), (63, 65))]) / iod)
        e = lambda q: (np.linalg.norm(q[1] - q[5]) + np.linalg.norm(q[2] - q[4])) / (2 * np.linalg.norm(q[0] - q[3]))
        ear.append((e(p[36:42]) + e(p[42:48])) / 2)
        if i % 2 == 0:
            dist.append(np.linalg.norm(np.array(embedder.compute_face_descriptor(fr, s)) - ref))
    aperture, ear = np.array(aperture), np.array(ear)
    feats = encode(audio, fps, phones=True)
    n = min(len(aperture), feats.frames)
    env, ap = feats.rms[:n].astype(float), aperture[:n]
    r, best = _best_lag_r(ap, env)
    db = feats.rms_db[:n]
    silent = db < np.percentile(db, 95) - 45
    voiced = feats.voiced[:n]
    base = np.percentile(ap, 2)
    ratio = float((ap[silent] - base).mean() / max((ap[voiced] - base).mean(), 1e-9)) if silent.any() and voiced.any() else float("nan")
    h, w = photo.shape[:2]
    band = np.ones((h, w), bool)
    bh, bw = int(0.08 * h), int(0.08 * w)
    band[bh:h - bh, bw:w - bw] = False
    # stillness over time (frame vs the clip's median frame); against the photo it includes the
    # H.264 coding error, reported separately
    median = np.median(np.stack([fr[band] for fr in frames[::5]]), 0)
    border = float(np.mean([np.abs(fr[band].astype(float) - median).mean() for fr in frames]))
    border_photo = float(np.mean([np.abs(fr[band].astype(float) - photo[band]).mean() for fr in frames]))
    closed = ear < 0.6 * np.median(ear)
    blinks = int((np.diff(closed.astype(int)) == 1).sum())
    minutes = len(frames) / fps / 60
    extra = {}
    if target_opening is not None:  # phonetic truth of a held-out utterance (forced alignment)
        m = min(n, len(target_opening))
        extra["target_r"], extra["target_lag"] = _best_lag_r(ap[:m], target_opening[:m])
    return {**extra, "frames": len(frames), "lipsync_r": r, "lipsync_lag": int(best), "silence_ratio": ratio,
            "identity_max": float(np.max(dist)), "identity_mean": float(np.mean(dist)), "border_change_255": border, "border_vs_photo_255": border_photo,
            "blinks_per_min": blinks / minutes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portrait", action="append", required=True)
    ap.add_argument("--speech", action="append", help="speech files (default: synthesized, several voices)")
    ap.add_argument("--motion", default="diffusion")
    ap.add_argument("--heldout", type=Path, help="train/data: also render N held-out utterances and compare the "
                    "mouth with their phonetic targets")
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "quality.jsonl"))
    args = ap.parse_args()
    models = dlib_models()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        speech = [Path(s) for s in args.speech or []]
        targets: dict[str, np.ndarray] = {}
        if args.heldout is not None:
            import soundfile as sf

            z = np.load(args.heldout / "heldout.npz")
            meta = json.loads((args.heldout / "heldout.json").read_text())
            starts = np.concatenate([[0], np.cumsum(z["lengths"])[:-1]])
            astarts = np.concatenate([[0], np.cumsum(z["audio_lengths"])[:-1]])
            from talkrt.runtime.motion import FIELD

            for i in np.linspace(0, len(z["lengths"]) - 1, args.count).astype(int):
                path = tmp / f"heldout_{i}_{meta[i]['voice'].replace(':', '_').replace('+', '_')}.wav"
                sf.write(path, z["audio"][astarts[i]:astarts[i] + z["audio_lengths"][i]], SAMPLE_RATE_HZ)
                mo = z["motion"][starts[i]:starts[i] + z["lengths"][i]]
                targets[path.name] = mo[:, FIELD["jaw_open"]] * (1 - mo[:, FIELD["lip_press"]])
                speech.append(path)
        if not speech:
            for i, (text, voice) in enumerate(zip(SENTENCES * 2, VOICES)):
                speak(text, voice, tmp / f"speech_{i}_{voice.replace('+', '_')}.wav")
                speech.append(tmp / f"speech_{i}_{voice.replace('+', '_')}.wav")
        rows = []
        for portrait in args.portrait:
            for sp in speech:
                out = tmp / "eval.mp4"
                options = SessionOptions(motion=args.motion, controls=MotionControls(seed=0))
                generate(portrait, sp, out, options)
                from talkrt.runtime.avatar import fit_photo
                from talkrt.runtime.image_io import load_image

                settings = options.settings
                photo = fit_photo(load_image(portrait), settings.max_size)
                row = measure(read_frames(out), photo, load_audio(sp), settings.fps, models, targets.get(sp.name))
                row.update(portrait=Path(portrait).name, speech=sp.name, motion=args.motion)
                rows.append(row)
                print(json.dumps(row))
    keys = ["lipsync_r", "lipsync_lag", "target_r", "silence_ratio", "identity_max", "identity_mean",
            "border_change_255", "border_vs_photo_255", "blinks_per_min"]
    print("\n| portrait | speech | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 2))
    for r in rows:
        print(f"| {r['portrait']} | {r['speech']} | " + " | ".join(f"{r.get(k, float('nan')):.3g}" for k in keys) + " |")
    with open(args.record, "a") as f:
        for r in rows:
            f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **r}) + "\n")


if __name__ == "__main__":
    main()
