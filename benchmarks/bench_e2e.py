"""End-to-end benchmark of the builtin family on this machine.

Runs face + appearance once, audio_enc + motion once for the clip, then renders every frame and
encodes the MP4 (sink on its worker thread, as in `talkrt generate`). Prints a Markdown table of
per-stage milliseconds (median, p99 per frame; totals for the once-per-clip stages) and the
end-to-end frames per second, and appends a JSON record to benchmarks/results/e2e.jsonl.

    python benchmarks/bench_e2e.py [--crop] [--portrait P] [--audio A] [--profile cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
from talkrt.runtime.session import Session, SessionOptions
from talkrt.runtime.video_io import Mp4Writer

ROOT = Path(__file__).resolve().parents[1]
WARMUP_FRAMES = 10


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("talkrt", "numpy", "onnxruntime", "opencv-python-headless", "av", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portrait", default=str(ROOT / "examples" / "portrait.jpg"))
    ap.add_argument("--audio", default=str(ROOT / "examples" / "speech.wav"))
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--crop", action="store_true", help="512x512 face output (the real-time target's setting)")
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "e2e.jsonl"))
    args = ap.parse_args()

    samples = load_audio(args.audio)
    options = SessionOptions.from_profile(args.profile, crop=args.crop)
    session = Session(args.portrait, options)
    _, motion = session.motion_for(samples)
    # warm-up frames are rendered and thrown away, then the per-frame samples are reset
    for _ in zip(range(WARMUP_FRAMES), session.frames(motion)):
        pass
    for stage in ("warp", "decode", "paste"):
        session.times.samples_ms[stage].clear()
    width, height = session.frame_size
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with Mp4Writer(Path(tmp) / "bench.mp4", width, height, options.fps, samples) as writer:
            for frame in session.frames(motion):
                t = time.perf_counter()
                writer.write(frame)
                session.times.add("sink", t)
        elapsed = time.perf_counter() - start
    n = len(motion)
    e2e_fps = n / elapsed
    audio_s = len(samples) / SAMPLE_RATE_HZ

    rows = []
    for stage in ("face", "appearance", "audio_enc", "motion", "warp", "decode", "paste", "sink"):
        v = np.array(session.times.samples_ms.get(stage, [0.0]))
        per_frame = stage in ("warp", "decode", "paste", "sink")
        rows.append({"stage": stage, "per": "frame" if per_frame else "clip",
                     "median_ms": float(np.median(v)), "p99_ms": float(np.percentile(v, 99)), "total_ms": float(v.sum())})
    print(f"\n| stage | per | median ms | p99 ms | total ms |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['per']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {r['total_ms']:.1f} |")
    motion_ms_per_s = (session.times.total_ms["audio_enc"] + session.times.total_ms["motion"]) / audio_s
    print(f"\n{n} frames {width}x{height} in {elapsed:.2f} s: **{e2e_fps:.1f} fps end to end** "
          f"(render + encode; real time is {options.fps:g}); audio_enc+motion {motion_ms_per_s:.1f} ms per s of audio")
    record = {"bench": "e2e", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(), "machine": machine(),
              "versions": versions(), "profile": options.__class__.__name__ and args.profile, "family": "builtin",
              "width": width, "height": height, "frames": n, "e2e_fps": e2e_fps,
              "audio_motion_ms_per_s": motion_ms_per_s, "stages": rows}
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    with open(args.record, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
