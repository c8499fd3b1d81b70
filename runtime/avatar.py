"""Avatars: a portrait prepared once for a model family and a profile, saved and loaded without
running the face models again, shared by any number of streams.

A family is a folder `runtime/<name>/` whose `family.py` defines `FAMILY`, an object with:

    name: str
    prepare(photo, options, settings, analyzer) -> dict[str, np.ndarray]   # face + appearance, once
    renderer(avatar) -> Renderer           # per stream: frame_size, render(row) -> [H, W, 3] uint8
    motion_stream(avatar, controls, settings) -> MotionStream   # per stream: audio_enc + motion

so a third family is a new folder, not edits here, in the session or in the CLI.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from talkrt.runtime.errors import InputError, OptionError
from talkrt.runtime.profiles import Settings, load_settings

AVATAR_VERSION = 1


@dataclass(frozen=True)
class AvatarOptions:
    family: str = "builtin"
    crop: bool = False  # frames are the aligned 512x512 face instead of the whole photo
    max_size: int | None = None  # longer side of whole-photo frames (default: the profile's)
    face_index: int = 0
    fps: float | None = None  # default: the profile's
    motion: str | None = None  # builtin: diffusion | heuristic (default: the profile's)
    weights: str | None = None  # liveportrait: the folder of downloaded (or exported) weights
    cfg_scale: float = 2.0  # liveportrait: JoyVASA's audio guidance scale

    def __post_init__(self):
        if self.fps is not None and (not np.isfinite(self.fps) or not 1.0 <= self.fps <= 120.0):
            raise OptionError("--fps", f"must be between 1 and 120, got {self.fps}")
        if self.max_size is not None and not 128 <= self.max_size <= 8192:
            raise OptionError("--max-size", f"must be between 128 and 8192, got {self.max_size}")
        if self.face_index < 0:
            raise OptionError("--face-index", f"must be 0 or more, got {self.face_index}")

    def resolved(self, s: Settings) -> "AvatarOptions":
        return replace(self, max_size=self.max_size or s.max_size, fps=self.fps or s.fps,
                       motion=self.motion or s.motion_model)


class Renderer(Protocol):
    frame_size: tuple[int, int]

    def render(self, row: np.ndarray) -> np.ndarray: ...


def get_family(name: str):
    """The family module's FAMILY; unknown names list the families that exist."""
    if not name.isidentifier():
        raise OptionError("--model", f"unknown model family {name!r}")
    try:
        module = importlib.import_module(f"talkrt.runtime.{name}.family")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("talkrt.runtime"):
            root = Path(__file__).resolve().parent
            known = sorted(p.parent.name for p in root.glob("*/family.py"))
            raise OptionError("--model", f"unknown model family {name!r} (available: {', '.join(known)})") from None
        raise
    return module.FAMILY


def fit_photo(rgb: np.ndarray, max_size: int) -> np.ndarray:
    """Downscale so the longer side is at most max_size; even width and height (yuv420p)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_size / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


class Avatar:
    """A prepared portrait. `Avatar.prepare(...)` runs face + appearance; `save`/`load` keep it."""

    def __init__(self, options: AvatarOptions, settings: Settings, data: dict[str, np.ndarray]):
        self.options, self.settings, self.data = options, settings, data
        self.family = get_family(options.family)
        self.fps = float(options.fps)
        self._shared: dict[str, Any] = {}  # family state built once and shared by streams (models, tables)

    @classmethod
    def prepare(cls, portrait: str | Path | np.ndarray, options: AvatarOptions = AvatarOptions(),
                profile: str | Settings = "cpu", analyzer=None) -> "Avatar":
        from talkrt.runtime.face import FaceAnalyzer
        from talkrt.runtime.image_io import load_image

        settings = profile if isinstance(profile, Settings) else load_settings(profile)
        options = options.resolved(settings)
        family = get_family(options.family)
        name = "portrait" if isinstance(portrait, np.ndarray) else str(portrait)
        rgb = portrait if isinstance(portrait, np.ndarray) else load_image(portrait)
        photo = fit_photo(rgb, options.max_size)
        analyzer = analyzer or FaceAnalyzer("ort", settings.threads)
        data = family.prepare(photo, options, settings, analyzer, name)
        return cls(options, settings, data)

    def save(self, path: str | Path) -> Path:
        """One .npz (no pickles): the family's arrays, the options and the profile name."""
        path = Path(path)
        if path.suffix != ".npz":
            raise InputError(path, "an avatar file must end in .npz")
        meta = {"version": AVATAR_VERSION, "options": asdict(self.options), "profile": self.settings.name}
        tmp = path.with_name(f".{path.name}.part.npz")
        np.savez(tmp, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **self.data)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, profile: str | Settings | None = None) -> "Avatar":
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no such avatar file")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["__meta__"]).decode())
                data = {k: z[k] for k in z.files if k != "__meta__"}
        except Exception:
            raise InputError(path, "not an avatar file (talkrt .npz)") from None
        if meta.get("version") != AVATAR_VERSION:
            raise InputError(path, f"avatar format {meta.get('version')} is not {AVATAR_VERSION} (prepare it again)")
        profile = profile or meta["profile"]
        settings = profile if isinstance(profile, Settings) else load_settings(profile)
        return cls(AvatarOptions(**meta["options"]), settings, data)

    def shared(self, key: str, build) -> Any:
        """Family state built on first use and shared by every stream of this avatar."""
        if key not in self._shared:
            self._shared[key] = build()
        return self._shared[key]

    def renderer(self) -> Renderer:
        return self.family.renderer(self)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.shared("frame_size", lambda: self.renderer().frame_size)

    def stream(self, controls=None, live: bool = False, policy: str | None = None):
        from talkrt.runtime.stream import Stream

        return Stream(self, controls, live=live, policy=policy)
