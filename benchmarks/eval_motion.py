"""Held-out evaluation of the motion models against the synthetic targets.

On the held-out split of train/make_data.py (voices and texts never seen in training), compare
each model's mouth coefficients with the targets: Pearson r pooled over all frames, for jaw,
spread, round, press, and the visible opening jaw * (1 - press) that the renderer shows.
Both models get the controls the targets were made with (seed, head intensity, gaze, emotion).

    python benchmarks/eval_motion.py [--data train/data] [--limit 150]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_enc import encode
from talkrt.runtime.motion import EMOTIONS, FIELD, MotionControls, open_motion

ROOT = Path(__file__).resolve().parents[1]
MOUTH = ("jaw_open", "lip_spread", "lip_round", "lip_press")


def opening(m: np.ndarray) -> np.ndarray:
    return m[:, FIELD["jaw_open"]] * (1 - m[:, FIELD["lip_press"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "train" / "data")
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "motion_eval.jsonl"))
    args = ap.parse_args()
    z = np.load(args.data / "heldout.npz")
    meta = json.loads((args.data / "heldout.json").read_text())
    starts = np.concatenate([[0], np.cumsum(z["lengths"])[:-1]])
    astarts = np.concatenate([[0], np.cumsum(z["audio_lengths"])[:-1]])
    models = {name: open_motion(name) for name in ("diffusion", "heuristic")}
    pred = {name: [] for name in models}
    truth, ms = [], {name: 0.0 for name in models}
    seconds = 0.0
    for i in range(min(args.limit, len(z["lengths"]))):
        audio = z["audio"][astarts[i]:astarts[i] + z["audio_lengths"][i]].astype(np.float32) / 32767
        feats = encode(audio, 25.0, phones=True)
        n = min(feats.frames, z["lengths"][i])
        truth.append(z["motion"][starts[i]:starts[i] + n])
        gaze = None if np.isnan(z["gaze"][i]).any() else tuple(float(v) for v in z["gaze"][i])
        controls = MotionControls(seed=i, head_motion=float(z["head"][i]), gaze=gaze,
                                  emotion=list(EMOTIONS)[int(z["emotion"][i])])
        seconds += len(audio) / 16000
        for name, model in models.items():
            t = time.perf_counter()
            out = model.generate(feats, controls)
            ms[name] += (time.perf_counter() - t) * 1000
            pred[name].append(out[:n])
    truth = np.concatenate(truth)
    rows = {}
    for name in models:
        p = np.concatenate(pred[name])
        r = {k: float(np.corrcoef(p[:, FIELD[k]], truth[:, FIELD[k]])[0, 1]) for k in MOUTH}
        r["opening"] = float(np.corrcoef(opening(p), opening(truth))[0, 1])
        r["ms_per_audio_s"] = ms[name] / seconds
        rows[name] = r
    voices = sorted({m["voice"] for m in meta[: args.limit]})
    print(f"held-out: {len(pred['diffusion'])} utterances, {seconds / 60:.1f} min, voices: {', '.join(voices)}\n")
    keys = list(MOUTH) + ["opening", "ms_per_audio_s"]
    print("| model | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    with open(args.record, "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "utterances": len(pred["diffusion"]),
                            "voices": voices, "results": rows}) + "\n")


if __name__ == "__main__":
    main()
