"""talkrt's runtime: what a product embeds. The public API is what this module re-exports:

    Avatar, AvatarOptions      prepare a portrait once (or load it), share it between streams
    Stream, Frame              push PCM, read timestamped frames (iterator or asyncio)
    MotionControls             seed, emotion, head motion, gaze, guidance, steps
    SessionOptions, generate   a file through the same stream into an MP4 or y4m
    load_settings              a profile as typed, frozen settings
"""
from talkrt.runtime.avatar import Avatar, AvatarOptions
from talkrt.runtime.motion import MotionControls
from talkrt.runtime.profiles import Settings, load_settings
from talkrt.runtime.session import SessionOptions, generate
from talkrt.runtime.stream import Frame, Stream

__all__ = ["Avatar", "AvatarOptions", "Frame", "MotionControls", "SessionOptions", "Settings", "Stream", "generate",
           "load_settings"]
