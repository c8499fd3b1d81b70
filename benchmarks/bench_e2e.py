"""End-to-end benchmark of the builtin family on this machine.

Runs face + appearance once, audio_enc + motion over the clip (the streaming windows, fed at once),
renders every frame stage by stage, then runs the clip end to end as `talkrt generate` does (the
stream into the MP4 sink on its worker thread). Prints a Markdown table of
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

from talkrt.runtime.audio_enc import ArrayAudio
from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
from talkrt.runtime.avatar import Avatar, AvatarOptions
from talkrt.runtime.motion import MotionControls
from talkrt.runtime.profiles import load_settings
from talkrt.runtime.session import stream_file
from talkrt.runtime.stream import Stream
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

    settings = load_settings(args.profile)
    samples = load_audio(args.audio)
    audio_s = len(samples) / SAMPLE_RATE_HZ
    times: dict[str, list[float]] = {k: [] for k in ("face+appearance", "audio_enc+motion", "warp", "decode", "paste")}
    t = time.perf_counter()
    avatar = Avatar.prepare(args.portrait, AvatarOptions(crop=args.crop), settings)
    times["face+appearance"].append((time.perf_counter() - t) * 1000)
    controls = MotionControls(steps=settings.steps)
    t = time.perf_counter()
    motion = avatar.family.motion_stream(avatar, controls, settings).advance(ArrayAudio(samples))
    times["audio_enc+motion"].append((time.perf_counter() - t) * 1000)
    renderer = avatar.renderer()
    for i, row in enumerate(motion):  # stage by stage (the first WARMUP_FRAMES not counted)
        t0 = time.perf_counter()
        points = renderer.warp(row)
        t1 = time.perf_counter()
        renderer.decode(points, row)
        t2 = time.perf_counter()
        renderer.paste()
        t3 = time.perf_counter()
        if i >= WARMUP_FRAMES:
            for k, a, b in (("warp", t0, t1), ("decode", t1, t2), ("paste", t2, t3)):
                times[k].append((b - a) * 1000)
    # end to end as `talkrt generate` runs it: the stream (audio_enc + motion + render) into the MP4 sink
    width, height = avatar.frame_size
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with Mp4Writer(Path(tmp) / "bench.mp4", width, height, avatar.fps, samples, crf=settings.crf,
                       preset=settings.preset) as writer:
            n = 0
            for frame in stream_file(Stream(avatar, controls, policy="wait"), samples, 1000.0):
                writer.write(frame.image)
                n += 1
        elapsed = time.perf_counter() - start
    e2e_fps = n / elapsed

    rows = []
    for stage, v in times.items():
        v = np.array(v or [0.0])
        per_frame = stage in ("warp", "decode", "paste")
        rows.append({"stage": stage, "per": "frame" if per_frame else "clip",
                     "median_ms": float(np.median(v)), "p99_ms": float(np.percentile(v, 99)), "total_ms": float(v.sum())})
    print("\n| stage | per | median ms | p99 ms | total ms |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['per']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {r['total_ms']:.1f} |")
    motion_ms_per_s = times["audio_enc+motion"][0] / audio_s
    print(f"\n{n} frames {width}x{height} in {elapsed:.2f} s: **{e2e_fps:.1f} fps end to end** "
          f"(stream + encode; real time is {avatar.fps:g}); audio_enc+motion {motion_ms_per_s:.1f} ms per s of audio")
    record = {"bench": "e2e", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(), "machine": machine(),
              "versions": versions(), "profile": args.profile, "family": "builtin",
              "width": width, "height": height, "frames": n, "e2e_fps": e2e_fps,
              "audio_motion_ms_per_s": motion_ms_per_s, "stages": rows}
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    with open(args.record, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
