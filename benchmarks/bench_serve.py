"""Serve benchmark: N loopback WebRTC clients (aiortc) against one `talkrt serve`, each streaming the
example speech in real time; per client: first-frame latency as the client sees it (offer sent ->
first video frame), frames per second received, and the audio/video offset (arrival of the same
media time on both tracks). The clients run on the same cores as the server, so by default they
count the video frames they receive without decoding them (`--decode` decodes). N = 1, 2, ... until a client falls below real time (95 % of the frame
rate, audio and video within 150 ms of each other); then one more
session than the measured capacity must be refused with 503 while the others keep their rate.
Prints a Markdown table and appends a JSON record to benchmarks/results/serve.jsonl.

    python benchmarks/bench_serve.py [--profile cpu] [--seconds 10] [--max 6]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import commit, machine, versions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FPS = 25.0
AV_LIMIT_MS = 150.0  # a session is real time at >= 95 % of the frame rate with audio and video within this


class _CountingVideoDecoder:
    """Stands in for the clients' VP8 decoder: one tiny frame per encoded frame, with its timestamp.
    The clients share this machine's two cores with the server; a real viewer decodes elsewhere."""

    def decode(self, encoded):
        import fractions

        import av

        frame = av.VideoFrame(16, 16, "yuv420p")
        frame.pts, frame.time_base = encoded.timestamp, fractions.Fraction(1, 90000)
        return [frame]


def skip_client_video_decoding() -> None:
    import aiortc.rtcrtpreceiver as receiver

    real = receiver.get_decoder
    receiver.get_decoder = lambda codec: _CountingVideoDecoder() if codec.mimeType.lower().startswith("video/") \
        else real(codec)


async def client(url: str, speech: Path, seconds: float) -> dict:
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    pc = RTCPeerConnection()
    player = MediaPlayer(str(speech))
    pc.addTrack(player.audio)
    pc.addTransceiver("video", direction="recvonly")
    arrivals = {"video": [], "audio": []}

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    f = await track.recv()
                except Exception:
                    return
                rate = 90000 if track.kind == "video" else f.sample_rate
                arrivals[track.kind].append((time.perf_counter(), f.pts / rate))
        asyncio.ensure_future(pull())

    await pc.setLocalDescription(await pc.createOffer())
    t_offer = time.perf_counter()
    async with aiohttp.ClientSession() as s:
        r = await s.post(url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
        answer = await r.json()
    if r.status != 200:
        await pc.close()
        player.audio.stop()
        return {"status": r.status, "error": answer.get("error")}
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    await asyncio.sleep(seconds)
    await pc.close()
    player.audio.stop()
    v, a = np.array(arrivals["video"]), np.array(arrivals["audio"])
    if len(v) < 2 or len(a) < 2:
        return {"status": 200, "error": "no media"}
    first_ms = (v[0, 0] - t_offer) * 1000
    late = v[v[:, 0] > v[0, 0] + 2.0]  # steady state: after the first 2 s
    fps = (len(late) - 1) / (late[-1, 0] - late[0, 0]) if len(late) > 2 else 0.0
    # media time of each track from its first frame; both start at the stream's time 0
    vt, at = v[:, 1] - v[0, 1], a[:, 1] - a[0, 1]
    audio_arrival = np.interp(vt, at, a[:, 0])
    ok = vt <= at[-1]
    offset_ms = float(np.median((v[ok, 0] - audio_arrival[ok]) * 1000)) if ok.any() else float("nan")
    return {"status": 200, "first_frame_ms": first_ms, "fps": fps, "av_offset_ms": offset_ms, "frames": len(v)}


async def run(n: int, url: str, speech: Path, seconds: float) -> list[dict]:
    return await asyncio.gather(*(client(url, speech, seconds) for _ in range(n)))


class ServerProcess:
    """`talkrt serve` in its own process (its event loop is not shared with the clients'), on a
    copy of the profile whose [serve] capacity is the number to try."""

    def __init__(self, profile: str, capacity: int, tmp: Path):
        import socket
        import subprocess

        from talkrt.runtime.profiles import _profile_text

        text = _profile_text(profile)
        path = tmp / f"bench_{capacity}.toml"
        path.write_text(text.replace("[serve]", "[serve_base]") + f"\n[serve]\ncapacity = {capacity}\n"
                        if "[serve]" not in text else text)
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            self.port = sk.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "talkrt.runtime.cli", "serve", "--port", str(self.port),
                                      "--profile", str(path)], cwd=tmp, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(2.0)  # the example avatar is prepared at start-up

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def main_async(args) -> dict:
    import tempfile

    from talkrt.runtime.profiles import load_settings

    measured_cap = load_settings(args.profile).serve_capacity
    tmp = Path(tempfile.mkdtemp(prefix="talkrt_bench_serve_"))
    server = ServerProcess(args.profile, args.max, tmp)
    await run(1, server.url, args.speech, 3.0)  # warm-up
    rows, capacity = [], 0
    print("| sessions | real time | first frame ms (max) | fps received (min) | A/V offset ms (max abs) |\n|---|---|---|---|---|")
    for n in range(1, args.max + 1):
        res = await run(n, server.url, args.speech, args.seconds)
        ok = all(r["status"] == 200 and "fps" in r and r["fps"] >= 0.95 * FPS and abs(r["av_offset_ms"]) <= AV_LIMIT_MS
                 for r in res)
        row = {"sessions": n, "realtime": ok,
               "first_frame_ms": max(r.get("first_frame_ms", float("nan")) for r in res),
               "fps_min": min(r.get("fps", 0.0) for r in res),
               "av_offset_ms": max(abs(r.get("av_offset_ms", float("nan"))) for r in res)}
        rows.append(row)
        print(f"| {n} | {'yes' if ok else 'no'} | {row['first_frame_ms']:.0f} | {row['fps_min']:.1f} | {row['av_offset_ms']:.0f} |")
        if not ok:
            break
        capacity = n
        await asyncio.sleep(1.0)  # the last sessions end
    server.stop()
    # one session more than capacity: refused, the others unaffected
    cap = max(1, capacity)
    server = ServerProcess(args.profile, cap, tmp)
    res = await run(cap + 1, server.url, args.speech, args.seconds)
    server.stop()
    refused = sum(r["status"] == 503 for r in res)
    served = [r for r in res if r["status"] == 200]
    over = {"capacity": cap, "refused": refused, "served_fps_min": min((r.get("fps", 0.0) for r in served), default=0.0)}
    print(f"\ncapacity {cap} (profile says {measured_cap}); at capacity + 1: {refused} refused (503), "
          f"the others at >= {over['served_fps_min']:.1f} fps")
    return {"rows": rows, "capacity": capacity, "profile_capacity": measured_cap, "over_capacity": over}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--speech", type=Path, default=ROOT / "examples" / "speech.wav")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--max", type=int, default=6)
    ap.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "serve.jsonl"))
    ap.add_argument("--decode", action="store_true", help="clients decode the video too (their CPU then counts "
                    "against the server's on this machine)")
    args = ap.parse_args()
    if not args.decode:
        skip_client_video_decoding()
    from talkrt.runtime.server import _restrict_ice_to_loopback

    _restrict_ice_to_loopback()  # the clients, like the server, use loopback candidates only
    result = asyncio.run(main_async(args))
    record = {"bench": "serve", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(), "machine": machine(),
              "versions": versions(), "profile": args.profile, "family": "builtin", "size": [512, 512],
              "clients_decode_video": args.decode, **result}
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    with open(args.record, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
