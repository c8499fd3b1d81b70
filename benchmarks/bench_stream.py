"""Streaming benchmark: latency, lag, real-time factor, concurrent streams and memory of `Stream`,
plus speech onset -> moving mouth at the `talkrt stream` pipe.

Speech is pushed at real-time pace (a feeder thread on the wall clock) in 20, 100 and 500 ms chunks:
- first frame: first chunk pushed -> first frame out (look-ahead and the first window included);
- lag: a frame leaves this long after the end of its audio was pushed (median, p99, jitter);
- real-time factor: the same clip pushed at once, frames per second / fps;
- streams: N streams side by side, each fed in real time, until one falls behind (lag p99 > 250 ms
  or late frames); memory per stream from the process RSS;
- onset: `talkrt stream --audio -` gets 2 s of silence then speech, written at real-time pace; the
  first frame whose mouth region departs from the idle face marks what a viewer sees.
Prints a Markdown table and appends JSON records to benchmarks/results/stream.jsonl.

    python benchmarks/bench_stream.py [--profile cpu] [--family builtin] [--max-streams 6] [--soak-hours 0]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import commit, machine, versions  # noqa: E402

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio  # noqa: E402
from talkrt.runtime.avatar import Avatar, AvatarOptions  # noqa: E402
from talkrt.runtime.stream import Stream  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAG_LIMIT_MS = 250.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def feed_realtime(stream: Stream, audio: np.ndarray, chunk_ms: float, t0: float) -> None:
    n = max(1, int(chunk_ms / 1000 * SAMPLE_RATE_HZ))
    for a in range(0, len(audio), n):
        due = t0 + (a + n) / SAMPLE_RATE_HZ  # a chunk is pushed once all its samples have "arrived"
        while (left := due - time.perf_counter()) > 0:
            time.sleep(min(left, 0.005))
        stream.push(audio[a:a + n])
    stream.end_of_speech()


def run_realtime(avatar: Avatar, audio: np.ndarray, chunk_ms: float, live: bool = False) -> dict:
    """One stream fed at real-time pace; per-frame lag against its audio's arrival."""
    stream = Stream(avatar, live=live, policy="wait")
    t0 = time.perf_counter()
    feeder = threading.Thread(target=feed_realtime, args=(stream, audio, chunk_ms, t0), daemon=True)
    feeder.start()
    outs = []
    for f in stream:
        outs.append((f.index, time.perf_counter()))
    feeder.join()
    stream.close()
    fps = avatar.fps
    n = max(1, int(chunk_ms / 1000 * SAMPLE_RATE_HZ))
    # the audio of frame i ends at sample (i+1)*16000/fps; it was pushed with the chunk holding it
    pushed_at = lambda s: t0 + min(len(audio), (s // n + 1) * n) / SAMPLE_RATE_HZ
    lag = np.array([(t - pushed_at(int(np.ceil((i + 1) * SAMPLE_RATE_HZ / fps)) - 1)) * 1000 for i, t in outs])
    return {"frames": len(outs), "first_frame_ms": (outs[0][1] - (t0 + n / SAMPLE_RATE_HZ)) * 1000,
            "lag_p50_ms": float(np.median(lag)), "lag_p99_ms": float(np.percentile(lag, 99)),
            "lag_jitter_ms": float(np.std(lag)), "stats": stream.stats}


def realtime_factor(avatar: Avatar, audio: np.ndarray) -> float:
    stream = Stream(avatar, policy="wait")
    start = time.perf_counter()
    feeder = threading.Thread(target=lambda: (stream.push(audio), stream.end_of_speech()), daemon=True)
    feeder.start()
    n = sum(1 for _ in stream)
    stream.close()
    return n / (time.perf_counter() - start) / avatar.fps


def concurrent(avatar: Avatar, audio: np.ndarray, n_streams: int) -> dict:
    results: list[dict] = [None] * n_streams
    before = rss_mb()

    def one(k):
        results[k] = run_realtime(avatar, audio, 20.0)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n_streams)]
    [t.start() for t in threads]
    peak = before
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb())
        time.sleep(0.2)
    [t.join() for t in threads]
    expected = round(len(audio) / SAMPLE_RATE_HZ * avatar.fps)
    ok = all(r["frames"] == expected and r["lag_p99_ms"] <= LAG_LIMIT_MS for r in results)
    return {"streams": n_streams, "realtime": ok, "lag_p99_ms": max(r["lag_p99_ms"] for r in results),
            "first_frame_ms": max(r["first_frame_ms"] for r in results), "rss_per_stream_mb": (peak - before) / n_streams}


def pipe_onset(portrait: str, speech: np.ndarray, profile: str, mouth: tuple[int, int, int, int]) -> dict:
    """Silence then speech into `talkrt stream --audio -` at real-time pace; onset = speech written ->
    first y4m frame whose mouth region departs from the idle face."""
    cmd = [sys.executable, "-m", "talkrt.runtime.cli", "stream", portrait, "--audio", "-", "--crop", "--profile", profile]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    header = b""
    while not header.endswith(b"\n"):
        header += proc.stdout.read(1)
    fields = dict((f[0], f[1:]) for f in header.decode().split()[1:])
    w, h = int(fields["W"]), int(fields["H"])
    size = len(b"FRAME\n") + w * h * 3 // 2
    frames: list[tuple[float, np.ndarray]] = []

    def read_exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            part = proc.stdout.read(n - len(buf))
            if not part:
                return buf
            buf += part
        return buf

    def reader():
        while True:
            data = read_exactly(size)
            if len(data) < size:
                return
            y = np.frombuffer(data[6:6 + w * h], np.uint8).reshape(h, w)
            x0, y0, x1, y1 = mouth
            frames.append((time.perf_counter(), y[y0:y1, x0:x1].astype(np.float32)))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    pcm = np.concatenate([np.zeros(2 * SAMPLE_RATE_HZ, np.float32), speech])
    data = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    t0 = time.perf_counter()
    chunk = 640  # 20 ms
    for a in range(0, len(data), chunk):
        while time.perf_counter() < t0 + (a + chunk) / 2 / SAMPLE_RATE_HZ:
            time.sleep(0.002)
        proc.stdin.write(data[a:a + chunk])
    proc.stdin.close()
    th.join(timeout=60)
    proc.wait(timeout=60)
    t_speech = t0 + 2.0
    idle = [f for t, f in frames if t < t_speech]
    # the head drifts while idle, so the mouth box changes anyway; an opening mouth shows its dark
    # cavity: more dark pixels in the box than ever while idle (the example rests with a teeth smile
    # whose corners are already dark, so the darkest pixel alone does not tell)
    dark = lambda f: int((f < 60).sum())
    idle_dark = max(dark(f) for f in idle[-25:])
    moving = next((t for t, f in frames if t >= t_speech and dark(f) > idle_dark + 40), None)
    onset_ms = (moving - t_speech) * 1000 if moving is not None else float("nan")
    first_voiced = np.argmax(np.abs(speech) > 0.02) / SAMPLE_RATE_HZ * 1000  # speech may start with a little silence
    return {"onset_ms": onset_ms, "speech_starts_ms": float(first_voiced), "idle_frames": len(idle)}


def soak(avatar: Avatar, speech: np.ndarray, hours: float) -> dict:
    """An accelerated long stream: memory stays flat, frames == round(duration * fps) exactly."""
    stream = Stream(avatar, policy="wait")
    total = int(hours * 3600 * SAMPLE_RATE_HZ)
    samples_rss = []

    def feed():
        pushed = 0
        while pushed < total:
            part = speech[: min(len(speech), total - pushed)]
            stream.push(part)
            pushed += len(part)
        stream.end_of_speech()

    threading.Thread(target=feed, daemon=True).start()
    n = 0
    for f in stream:
        n += 1
        if n % 9000 == 0:  # every 6 min of video at 25 fps
            samples_rss.append(rss_mb())
    stream.close()
    return {"frames": n, "expected": round(total / SAMPLE_RATE_HZ * avatar.fps), "rss_mb": samples_rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portrait", default=str(ROOT / "examples" / "portrait.jpg"))
    ap.add_argument("--audio", default=str(ROOT / "examples" / "speech.wav"))
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--family", default="builtin")
    ap.add_argument("--weights", help="liveportrait: weights folder")
    ap.add_argument("--max-streams", type=int, default=6)
    ap.add_argument("--soak-hours", type=float, default=0.0, help="also run an accelerated stream this long")
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "stream.jsonl"))
    args = ap.parse_args()

    audio = load_audio(args.audio)
    clip = audio[: 8 * SAMPLE_RATE_HZ]
    options = AvatarOptions(family=args.family, crop=True, weights=args.weights)
    avatar = Avatar.prepare(args.portrait, options, args.profile)
    record = {"bench": "stream", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(), "machine": machine(),
              "versions": versions(), "profile": args.profile, "family": args.family, "size": avatar.frame_size,
              "stream_settings": avatar.settings.stream.__dict__, "chunks": {}}
    print("| chunk | first frame ms | lag p50 ms | lag p99 ms | jitter ms |\n|---|---|---|---|---|")
    for chunk_ms in (20.0, 100.0, 500.0):
        run_realtime(avatar, clip[: SAMPLE_RATE_HZ], chunk_ms)  # warm-up
        r = run_realtime(avatar, clip, chunk_ms)
        r.pop("stats")
        record["chunks"][str(int(chunk_ms))] = r
        print(f"| {chunk_ms:g} ms | {r['first_frame_ms']:.0f} | {r['lag_p50_ms']:.0f} | {r['lag_p99_ms']:.0f} | "
              f"{r['lag_jitter_ms']:.0f} |")
    record["realtime_factor"] = realtime_factor(avatar, clip)
    print(f"\nreal-time factor (one stream, audio pushed at once): {record['realtime_factor']:.2f}x")
    record["concurrent"] = []
    print("\n| streams | real time | lag p99 ms | first frame ms | RSS per stream MB |\n|---|---|---|---|---|")
    for n in range(1, args.max_streams + 1):
        c = concurrent(avatar, clip, n)
        record["concurrent"].append(c)
        print(f"| {n} | {'yes' if c['realtime'] else 'no'} | {c['lag_p99_ms']:.0f} | {c['first_frame_ms']:.0f} | "
              f"{c['rss_per_stream_mb']:.1f} |")
        if not c["realtime"]:
            break
    record["capacity_streams"] = max([c["streams"] for c in record["concurrent"] if c["realtime"]], default=0)
    if args.family == "builtin":
        pts = avatar.renderer().points
        lips = pts[[13, 14, 61, 291]]
        x0, y0 = np.floor(lips.min(0) - [10, 12]).astype(int)
        x1, y1 = np.ceil(lips.max(0) + [10, 24]).astype(int)
        record["pipe"] = pipe_onset(args.portrait, audio[: 4 * SAMPLE_RATE_HZ], args.profile, (x0, y0, x1, y1))
        print(f"\n`talkrt stream` pipe: speech written -> mouth moving on screen: {record['pipe']['onset_ms']:.0f} ms "
              f"(the clip's voice starts {record['pipe']['speech_starts_ms']:.0f} ms in)")
    if args.soak_hours > 0:
        record["soak"] = soak(avatar, audio, args.soak_hours)
        print(f"\nsoak {args.soak_hours:g} h: {record['soak']['frames']} frames (expected {record['soak']['expected']}), "
              f"RSS MB every 6 min: {[round(v) for v in record['soak']['rss_mb']]}")
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    with open(args.record, "a") as f:
        f.write(json.dumps(record, default=lambda o: o.__dict__ if hasattr(o, "__dict__") else str(o)) + "\n")


if __name__ == "__main__":
    main()
