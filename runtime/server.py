"""`talkrt serve`: the live avatar in a web page over WebRTC (aiohttp + aiortc), several sessions.

    GET  /          the page (pick a portrait, speak or play a file, watch the avatar live)
    POST /offer     {"sdp", "type", "portrait"?: data URL} -> {"sdp", "type", "session"}   (aiortc's idiom)
    GET  /status    {"sessions", "capacity"}

Each session is one Stream (live clock, wait policy) on its own worker thread, fed by the peer's
audio track and sending the avatar's video and the speech audio back. Admission control: at most
`capacity` sessions (the profile's measured [serve] capacity, or --max-sessions below it); beyond it
a new offer gets 503 "busy" and running sessions are untouched. Safe by default: binds to
127.0.0.1, optional bearer token on every request, limits on upload and message size, image pixels,
session length and silence; portraits are decoded with the CLI's checks from the request's bytes,
never from a path. A server bound to a loopback address offers only loopback ICE candidates and
ignores the peer's others, so its media never leaves the machine.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from talkrt.runtime.avatar import Avatar, AvatarOptions
from talkrt.runtime.errors import OptionError, TalkrtError
from talkrt.runtime.profiles import load_settings
from talkrt.runtime.stream import Stream

LOG = logging.getLogger("talkrt.serve")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "portrait.jpg"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    profile: str = "cpu"
    token: str | None = None
    max_sessions: int | None = None  # cap below the profile's capacity
    max_message_bytes: int = 12 << 20  # a request body (the portrait travels base64 inside the offer)
    max_image_px: int = 4096  # longest side of an uploaded portrait
    max_session_s: float = 600.0
    silence_timeout_s: float = 20.0  # no audio packets from the peer for this long ends the session
    example: str = str(EXAMPLE)

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise OptionError("--port", f"must be 1..65535, got {self.port}")
        if self.max_sessions is not None and self.max_sessions < 1:
            raise OptionError("--max-sessions", "must be at least 1")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def loopback_only_sdp(sdp: str) -> str:
    """The offer without ICE candidates that are not loopback addresses."""
    keep = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) > 4 and not is_loopback(parts[4]):
                continue
        keep.append(line)
    return "\r\n".join(keep) + "\r\n"


def _restrict_ice_to_loopback() -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else ["::1"]


class Session:
    def __init__(self, server: "Server", avatar: Avatar):
        from aiortc import RTCPeerConnection

        from talkrt.runtime.webrtc import AvatarVideoTrack, SpeechAudioTrack

        self.id = uuid.uuid4().hex[:12]
        self.server, self.started = server, time.perf_counter()
        from talkrt.runtime.motion import MotionControls

        # sessions sample the profile's [serve] steps: more of them fit the device at the same latency
        # `wait`: a busy event loop holds the stream back instead of dropping frames, whose audio
        # would go with them and shift the audio track against the video
        self.stream = Stream(avatar, MotionControls(steps=server.settings.serve_steps), live=True, policy="wait")
        self.pc = RTCPeerConnection()
        self.audio_out = SpeechAudioTrack()
        self.video_out = AvatarVideoTrack(self.stream, self.audio_out)
        self.pc.addTrack(self.video_out)
        self.pc.addTrack(self.audio_out)
        self.tasks: list[asyncio.Task] = []
        self.closed = False

        self.has_audio = False

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                self.has_audio = True
                self.tasks.append(asyncio.ensure_future(self._mic(track)))

        @self.pc.on("connectionstatechange")
        async def on_state():
            if self.pc.connectionState in ("failed", "closed", "disconnected"):
                await self.close(f"peer {self.pc.connectionState}")

    async def _mic(self, track) -> None:
        from talkrt.runtime.webrtc import feed_microphone

        why = await feed_microphone(track, self.stream, self.server.options.silence_timeout_s)
        await self.close(why)

    async def _deadline(self) -> None:
        await asyncio.sleep(self.server.options.max_session_s)
        await self.close("session length limit")

    async def _expect_audio(self) -> None:
        """A peer that never sends an audio track is as silent as one that stops."""
        await asyncio.sleep(self.server.options.silence_timeout_s)
        if not self.has_audio:
            await self.close("peer sent no audio")

    async def close(self, why: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        LOG.info("session %s ends: %s", self.id, why)
        self.server.sessions.pop(self.id, None)
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.video_out.stop()
        self.audio_out.stop()
        await asyncio.to_thread(self.stream.close)
        await self.pc.close()


class Server:
    def __init__(self, options: ServeOptions = ServeOptions()):
        self.options = options
        # served avatars render with the serve section's sampling (what the measured capacity assumed)
        self.settings = load_settings(options.profile)
        self.settings = replace(self.settings, render_cubic=self.settings.serve_cubic)
        measured = self.settings.serve_capacity
        self.capacity = min(measured, options.max_sessions) if options.max_sessions else measured
        self.sessions: dict[str, Session] = {}
        self._example: Avatar | None = None
        self._admit = asyncio.Lock()
        if is_loopback(options.host):
            _restrict_ice_to_loopback()

    # helpers -------------------------------------------------------------------------------------
    def _authorised(self, request) -> bool:
        token = self.options.token
        if token is None:
            return True
        given = request.headers.get("Authorization", "")
        return given == f"Bearer {token}" or request.query.get("token") == token

    async def example_avatar(self) -> Avatar:
        if self._example is None:
            self._example = await asyncio.to_thread(Avatar.prepare, self.options.example, AvatarOptions(crop=True),
                                                    self.settings)
        return self._example

    async def portrait_avatar(self, data_url: str) -> Avatar:
        """A portrait from the request's bytes, decoded with the CLI's checks plus the pixel limit."""
        from PIL import Image

        from talkrt.runtime.image_io import load_image

        head, _, payload = data_url.partition(",")
        if not head.startswith("data:image/") or ";base64" not in head:
            raise OptionError("portrait", "must be a data:image/...;base64 URL")
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise OptionError("portrait", "is not valid base64") from None
        with tempfile.NamedTemporaryFile(suffix=".img") as f:  # our own file: nothing of the client's path
            f.write(raw)
            f.flush()
            try:
                with Image.open(f.name) as im:
                    if max(im.size) > self.options.max_image_px:
                        raise OptionError("portrait", f"is {im.size[0]}x{im.size[1]}; the limit is "
                                          f"{self.options.max_image_px} px a side")
            except OptionError:
                raise
            except Exception:
                raise OptionError("portrait", "is not an image talkrt can read") from None
            rgb = load_image(f.name)
        return await asyncio.to_thread(Avatar.prepare, rgb, AvatarOptions(crop=True), self.settings)

    # routes --------------------------------------------------------------------------------------
    async def index(self, request):
        from aiohttp import web

        page = resources.files("talkrt.runtime").joinpath("web/index.html").read_text()
        return web.Response(text=page, content_type="text/html")

    async def status(self, request):
        from aiohttp import web

        return web.json_response({"sessions": len(self.sessions), "capacity": self.capacity})

    async def offer(self, request):
        from aiohttp import web
        from aiortc import RTCSessionDescription

        try:
            body = await request.json()
            if not isinstance(body, dict) or body.get("type") != "offer" or not isinstance(body.get("sdp"), str):
                raise ValueError
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return web.json_response({"error": "expected JSON {\"sdp\": ..., \"type\": \"offer\"}"}, status=400)
        async with self._admit:  # admission is decided one offer at a time
            if len(self.sessions) >= self.capacity:
                return web.json_response({"error": "busy", "capacity": self.capacity}, status=503)
            try:
                portrait = body.get("portrait")
                avatar = await (self.portrait_avatar(portrait) if portrait else self.example_avatar())
            except TalkrtError as exc:
                return web.json_response({"error": " ".join(str(exc).split())}, status=400)
            session = Session(self, avatar)
            self.sessions[session.id] = session
        sdp = body["sdp"] if not is_loopback(self.options.host) else loopback_only_sdp(body["sdp"])
        try:
            await session.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await session.pc.setLocalDescription(await session.pc.createAnswer())
        except Exception as exc:
            await session.close(f"bad offer ({exc.__class__.__name__})")
            return web.json_response({"error": "the SDP offer could not be used"}, status=400)
        session.tasks += [asyncio.ensure_future(session._deadline()), asyncio.ensure_future(session._expect_audio())]
        return web.json_response({"sdp": session.pc.localDescription.sdp, "type": "answer", "session": session.id})

    def app(self):
        from aiohttp import web

        @web.middleware
        async def auth(request, handler):
            if not self._authorised(request):
                return web.json_response({"error": "unauthorised"}, status=401)
            return await handler(request)

        app = web.Application(client_max_size=self.options.max_message_bytes, middlewares=[auth])
        app.router.add_get("/", self.index)
        app.router.add_get("/status", self.status)
        app.router.add_post("/offer", self.offer)

        async def on_startup(app):  # the example avatar is ready before the first visitor
            asyncio.ensure_future(self.example_avatar())

        app.on_startup.append(on_startup)

        async def on_shutdown(app):
            await asyncio.gather(*(s.close("server shutdown") for s in list(self.sessions.values())))

        app.on_shutdown.append(on_shutdown)
        return app


def serve(options: ServeOptions) -> None:
    from aiohttp import web

    server = Server(options)
    print(f"talkrt serve: http://{options.host}:{options.port}/ (capacity {server.capacity} sessions, "
          f"profile {options.profile}{', token required' if options.token else ''})", flush=True)
    web.run_app(server.app(), host=options.host, port=options.port, print=None)
