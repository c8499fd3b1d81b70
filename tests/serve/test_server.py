"""`talkrt serve` without a browser: an aiortc client on loopback, and every request a hostile or
unlucky client can send, each with the right answer and nothing left running."""
from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from contextlib import asynccontextmanager

import numpy as np
from PIL import Image

from talkrt.runtime.server import ServeOptions, Server, loopback_only_sdp


@asynccontextmanager
async def running(options: ServeOptions):
    from aiohttp import web

    server = Server(options)
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def connect(url: str, speech_path, headers=None, portrait=None):
    """An aiortc peer that sends the speech file and collects what comes back."""
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    pc = RTCPeerConnection()
    player = MediaPlayer(str(speech_path))
    pc.addTrack(player.audio)
    pc.addTransceiver("video", direction="recvonly")
    got = {"video": [], "audio": []}

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                got[track.kind].append(frame)
        asyncio.ensure_future(pull())

    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": "offer"}
    if portrait is not None:
        body["portrait"] = portrait
    async with aiohttp.ClientSession() as s:
        r = await s.post(url + "/offer", json=body, headers=headers or {})
        answer = await r.json()
    if r.status == 200:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc, player, got, r.status, answer


def _png(w: int, h: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 200, np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_a_session_streams_video_and_audio_and_ends_with_its_peer(speech_path):
    threads_before = threading.active_count()

    async def main():
        async with running(ServeOptions()) as (server, url):
            pc, player, got, status, answer = await connect(url, speech_path)
            assert status == 200 and answer["type"] == "answer"
            await asyncio.sleep(4.0)
            assert len(server.sessions) == 1
            await pc.close()
            player.audio.stop()
            for _ in range(50):
                if not server.sessions:
                    break
                await asyncio.sleep(0.1)
            assert not server.sessions  # the disconnect ended the session
            return got

    got = asyncio.run(main())
    video, audio = got["video"], got["audio"]
    assert len(video) > 50 and (video[0].width, video[0].height) == (512, 512)
    assert len(audio) > 100  # 20 ms packets of the speech that plays with the frames
    # the mouth moves while the speech plays: frames differ in the lower face
    frames = np.stack([f.to_ndarray(format="rgb24")[300:420, 180:340] for f in video[-40:]]).astype(np.float32)
    assert frames.std(0).mean() > 2.0
    time.sleep(0.5)
    assert threading.active_count() <= threads_before + 2  # aiortc's own helpers may linger briefly


def test_one_session_more_than_capacity_is_refused_and_the_others_go_on(speech_path):
    async def main():
        async with running(ServeOptions(max_sessions=1)) as (server, url):
            pc1, p1, got1, s1, _ = await connect(url, speech_path)
            await asyncio.sleep(1.5)
            pc2, p2, _, s2, answer2 = await connect(url, speech_path)
            before = len(got1["video"])
            await asyncio.sleep(1.5)
            after = len(got1["video"])
            for pc, p in ((pc1, p1), (pc2, p2)):
                await pc.close()
                p.audio.stop()
            return s1, s2, answer2, before, after, server.capacity

    s1, s2, answer2, before, after, capacity = asyncio.run(main())
    assert (s1, s2, capacity) == (200, 503, 1) and answer2["error"] == "busy"
    assert after - before > 25  # the running session kept its frame rate


def test_wrong_token_garbage_oversized_and_bad_offers():
    import aiohttp

    async def main():
        out = {}
        async with running(ServeOptions(token="s3cret", max_message_bytes=64 << 10)) as (server, url):
            auth = {"Authorization": "Bearer s3cret"}
            async with aiohttp.ClientSession() as s:
                out["no token"] = (await s.get(url + "/")).status
                out["wrong token"] = (await s.post(url + "/offer?token=nope", json={})).status
                out["page"] = (await s.get(url + "/?token=s3cret")).status
                out["garbage"] = (await s.post(url + "/offer", data=b"\x00\xffnot json", headers=auth)).status
                out["no sdp"] = (await s.post(url + "/offer", json={"type": "offer"}, headers=auth)).status
                big = {"type": "offer", "sdp": "v=0", "portrait": "x" * (100 << 10)}
                out["oversized"] = (await s.post(url + "/offer", json=big, headers=auth)).status
                r = await s.post(url + "/offer", json={"type": "offer", "sdp": "garbage"}, headers=auth)
                out["bad sdp"] = (r.status, (await r.json())["error"])
            out["sessions"] = len(server.sessions)
        return out

    out = asyncio.run(main())
    assert out["no token"] == out["wrong token"] == 401 and out["page"] == 200
    assert out["garbage"] == out["no sdp"] == 400 and out["oversized"] == 413
    assert out["bad sdp"][0] == 400 and "SDP" in out["bad sdp"][1]
    assert out["sessions"] == 0


def test_portraits_are_checked_like_the_cli(tmp_path):
    import aiohttp

    async def main():
        out = {}
        async with running(ServeOptions(max_image_px=1024)) as (server, url):
            async with aiohttp.ClientSession() as s:
                for name, portrait in (("huge", _png(2000, 100)), ("not an image", "data:image/png;base64,AAAA"),
                                       ("no face", _png(256, 256)), ("path", "/etc/passwd")):
                    r = await s.post(url + "/offer", json={"type": "offer", "sdp": "v=0", "portrait": portrait})
                    out[name] = (r.status, (await r.json())["error"])
            out["sessions"] = len(server.sessions)
        return out

    out = asyncio.run(main())
    assert out["huge"][0] == 400 and "limit is 1024 px" in out["huge"][1]
    assert out["not an image"][0] == 400 and "not an image" in out["not an image"][1]
    assert out["no face"][0] == 400 and "face" in out["no face"][1]
    assert out["path"][0] == 400 and "data:image" in out["path"][1]  # never read from the server's disk
    assert out["sessions"] == 0


def test_slow_video_consumer_drops_frames_and_keeps_the_queue_bounded(portrait_path):
    from talkrt.runtime.avatar import Avatar, AvatarOptions
    from talkrt.runtime.stream import Stream
    from talkrt.runtime.webrtc import AvatarVideoTrack, SpeechAudioTrack

    avatar = Avatar.prepare(portrait_path, AvatarOptions(crop=True))

    async def main():
        stream = Stream(avatar, live=True, policy="drop")
        track = AvatarVideoTrack(stream, SpeechAudioTrack())
        pts = []
        for _ in range(6):
            pts.append((await track.recv()).pts)
            await asyncio.sleep(0.5)  # a consumer far slower than 25 fps
        queued = len(stream._out)
        track.stop()
        stream.close()
        return pts, queued, stream.stats.dropped

    pts, queued, dropped = asyncio.run(main())
    assert dropped > 20 and queued <= 8
    assert all(a < b for a, b in zip(pts, pts[1:]))  # later frames, never stale ones replayed


def test_silent_peers_and_long_sessions_are_ended(speech_path):
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription

    async def main():
        async with running(ServeOptions(silence_timeout_s=1.0, max_session_s=30)) as (server, url):
            pc = RTCPeerConnection()  # receives, never sends audio
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            async with aiohttp.ClientSession() as s:
                r = await s.post(url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
                answer = await r.json()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
            await asyncio.sleep(0.5)
            alive = len(server.sessions)
            await asyncio.sleep(1.5)
            silent = len(server.sessions)
            await pc.close()
        async with running(ServeOptions(max_session_s=1.0)) as (server, url):
            pc2, player, _, _, _ = await connect(url, speech_path)
            await asyncio.sleep(2.0)
            long = len(server.sessions)
            await pc2.close()
            player.audio.stop()
        return alive, silent, long

    assert asyncio.run(main()) == (1, 0, 0)


def test_loopback_offer_keeps_only_loopback_candidates():
    sdp = "v=0\r\na=candidate:1 1 udp 1 192.0.2.7 5000 typ host\r\na=candidate:2 1 udp 1 127.0.0.1 5001 typ host\r\n"
    kept = loopback_only_sdp(sdp)
    assert "127.0.0.1" in kept and "192.0.2.7" not in kept
