"""A talkrt avatar worker for a LiveKit room (LiveKit Agents' avatar protocol).

The agent (your AgentSession, with `DataStreamAudioOutput` towards this worker's identity) streams
its TTS audio over LiveKit's DataStream; this worker turns it into the avatar's video and audio and
publishes both to the room, reporting playback started/finished and honouring interruptions.

    pip install 'talkrt[livekit]'
    LIVEKIT_URL=wss://... LIVEKIT_TOKEN=<token for identity "talkrt-avatar"> \
        python examples/livekit_avatar_worker.py --portrait examples/portrait.jpg [--profile cpu]
"""
from __future__ import annotations

import argparse
import asyncio
import os

from livekit import rtc
from livekit.agents.voice.avatar import AvatarRunner, DataStreamAudioReceiver

from talkrt.runtime import Avatar, AvatarOptions
from talkrt.runtime.integrations.livekit import TalkrtVideoGenerator


async def main(portrait: str, profile: str) -> None:
    avatar = Avatar.load(portrait) if portrait.endswith(".npz") else \
        Avatar.prepare(portrait, AvatarOptions(crop=True), profile)
    room = rtc.Room()
    await room.connect(os.environ["LIVEKIT_URL"], os.environ["LIVEKIT_TOKEN"])
    video_gen = TalkrtVideoGenerator(avatar)
    runner = AvatarRunner(room, audio_recv=DataStreamAudioReceiver(room), video_gen=video_gen,
                          options=TalkrtVideoGenerator.avatar_options(avatar))
    await runner.start()
    try:
        await runner.wait_for_complete()
    finally:
        await video_gen.aclose()
        await room.disconnect()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portrait", default="examples/portrait.jpg", help="portrait image or prepared avatar (.npz)")
    ap.add_argument("--profile", default="cpu")
    args = ap.parse_args()
    asyncio.run(main(args.portrait, args.profile))
