"""The README's quality numbers: the builtin family on real human speech, measured by `talkrt eval`.

Renders every clip of ../shared/real-speech/ on two portraits (the example, which smiles with its
teeth showing, and Grace Hopper with closed lips, as matplotlib ships her photo) with the trained
motion model and with the heuristic, evaluates each video (transcripts where the folder's README
gives them, else pocketsphinx's recognition), and checks --head-motion 0/1/2 on the longest clip.

    pip install -e ".[eval]"
    python benchmarks/eval_real_speech.py --out /tmp/real-eval
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "real-speech"
TRANSCRIPTS = {"cards-001": "ten of clubs", "cards-002": "four queen of clubs", "cards-003": "seven of clubs",
               "cards-004": "five five", "cards-005": "eight of spades four of clubs seven of hearts",
               "goforward": "go forward ten meters"}
KEYS = ["lipsync_envelope_r", "lipsync_envelope_r_best", "lipsync_envelope_lag", "lipsync_phones_r",
        "lipsync_phones_r_best", "pbm_closed", "open_vowel_aperture", "silence_ratio", "identity_max", "head_std_deg",
        "blinks_per_min", "landmark_jitter_iod", "background_change_255", "face_sharpness_vs_photo"]


def portraits() -> dict[str, Path]:
    import matplotlib

    return {"example": ROOT / "examples" / "portrait.jpg",
            "hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"}


def talkrt(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "talkrt.runtime.cli", *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--motion", nargs="+", default=["diffusion", "heuristic"])
    ap.add_argument("--record", type=Path, default=ROOT / "benchmarks" / "results" / "real_speech_eval.jsonl")
    args = ap.parse_args()
    clips = sorted(SPEECH.glob("*.wav"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results = {}
    for motion in args.motion:
        folder = args.out / motion
        folder.mkdir(parents=True, exist_ok=True)
        for pname, portrait in portraits().items():
            for clip in clips:
                video = folder / f"{pname}_{clip.stem}.mp4"
                if not video.exists():
                    talkrt("generate", str(portrait), str(clip), "-o", str(video), "--motion", motion, "--quiet")
                spec = {"portrait": str(portrait), "audio": str(clip)}
                if clip.stem in TRANSCRIPTS:
                    spec["text"] = TRANSCRIPTS[clip.stem]
                video.with_suffix(".inputs.json").write_text(json.dumps(spec))
        talkrt("eval", str(folder), "-o", str(folder / "eval"))
        results[motion] = json.loads((folder / "eval" / "summary.json").read_text())["summary"]
    # head motion: still, default and doubled, on the longest clip
    longest = max(clips, key=lambda p: p.stat().st_size)
    head = {}
    for level in ("0", "1", "2"):
        folder = args.out / f"head_{level}"
        folder.mkdir(parents=True, exist_ok=True)
        video = folder / f"example_{longest.stem}.mp4"
        talkrt("generate", str(portraits()["example"]), str(longest), "-o", str(video), "--head-motion", level, "--quiet")
        talkrt("eval", str(video), "--portrait", str(portraits()["example"]), "--audio", str(longest), "--no-report",
               "-o", str(folder / "eval"))
        head[level] = json.loads((folder / "eval" / f"{video.stem}.json").read_text())["head_std_deg"]
    print("\n| motion | " + " | ".join(KEYS) + " |\n|" + "---|" * (len(KEYS) + 1))
    for motion, row in results.items():
        print(f"| {motion} | " + " | ".join(f"{row.get(k, float('nan')):.3g}" for k in KEYS) + " |")
    print(f"\nhead std (deg) on {longest.name}, --head-motion 0/1/2: " + ", ".join(f"{v:.2f}" for v in head.values()))
    with open(args.record, "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit, "clips": len(clips),
                            "portraits": list(portraits()), "summary": results, "head_std_by_level": head}) + "\n")


if __name__ == "__main__":
    main()
