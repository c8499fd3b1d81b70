"""Profiles: TOML data, a defaults file plus per-device deltas; unknown keys are errors."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from talkrt.runtime.errors import OptionError


def _profile_text(name: str) -> str:
    path = Path(name)
    if path.suffix == ".toml" and path.is_file():
        return path.read_text()
    res = resources.files("talkrt.profiles") / f"{name}.toml"
    if not res.is_file():
        available = sorted(p.name[:-5] for p in resources.files("talkrt.profiles").iterdir()
                           if p.name.endswith(".toml") and p.name != "defaults.toml")
        raise OptionError("--profile", f"unknown profile {name!r} (available: {', '.join(available)})")
    return res.read_text()


def _merge(base: dict, delta: dict, where: str) -> dict:
    out = dict(base)
    for key, value in delta.items():
        if key not in base:
            raise OptionError(f"profile key {where}{key}", "is not a known setting")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise OptionError(f"profile key {where}{key}", "must be a table")
            out[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            if isinstance(base[key], float) and isinstance(value, int):
                value = float(value)
            if type(value) is not type(base[key]):
                raise OptionError(f"profile key {where}{key}", f"must be {type(base[key]).__name__}")
            out[key] = value
    return out


def load_profile(name: str = "cpu") -> dict[str, Any]:
    defaults = tomllib.loads((resources.files("talkrt.profiles") / "defaults.toml").read_text())
    try:
        delta = tomllib.loads(_profile_text(name))
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"profile {name}", f"is not valid TOML ({exc})") from None
    profile = _merge(defaults, delta, "")
    _validate(profile)
    profile["name"] = Path(name).stem
    return profile


PRECISIONS = ("fp32", "fp16", "int8")
BACKENDS = ("ort", "torch", "trt")


def _validate(p: dict[str, Any]) -> None:
    """Values the type check cannot catch."""
    for stage, precision in p["precision"].items():
        if precision not in PRECISIONS:
            raise OptionError(f"profile key precision.{stage}", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if p["engine"]["backend"] not in BACKENDS:
        raise OptionError("profile key engine.backend", f"must be one of {', '.join(BACKENDS)}")
    s = p["shapes"]
    if not 1 <= s["batch_min"] <= s["batch_opt"] <= s["batch_max"]:
        raise OptionError("profile shapes", "need 1 <= batch_min <= batch_opt <= batch_max")
    if not 0 <= p["build"]["opt_level"] <= 5:
        raise OptionError("profile key build.opt_level", "must be 0..5")
    if not all(isinstance(a, int) and a >= 50 for a in p["build"]["cuda_architectures"]):
        raise OptionError("profile key build.cuda_architectures", "must list compute capabilities such as 87, 89")
    if p["runtime"]["streams"] < 1 or p["runtime"]["frame_slots"] < 1:
        raise OptionError("profile runtime", "streams and frame_slots must be at least 1")
    st = p["stream"]
    if st["stride"] < 1 or st["joyvasa_stride"] < 1 or st["queue_frames"] < 1 or not 0 <= st["lookahead_ms"] <= 2000 or st["max_buffer_s"] <= 0:
        raise OptionError("profile stream", "needs stride >= 1, queue_frames >= 1, lookahead_ms in 0..2000, max_buffer_s > 0")
    if st["policy"] not in ("drop", "wait"):
        raise OptionError("profile key stream.policy", "must be drop or wait")
    if p["serve"]["capacity"] < 1:
        raise OptionError("profile key serve.capacity", "must be at least 1")
    if p["motion"]["model"] not in ("diffusion", "heuristic"):
        raise OptionError("profile key motion.model", "must be diffusion or heuristic")


def profile_hash(p: dict[str, Any]) -> str:
    """Hash of what an engine build depends on (precision, shapes, build): engines record it."""
    import hashlib
    import json

    keyed = {k: p[k] for k in ("precision", "shapes", "build")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StreamSettings:
    stride: int
    joyvasa_stride: int
    lookahead_ms: float
    queue_frames: int
    policy: str
    max_buffer_s: float
    budget_motion_ms: float
    budget_render_ms: float


@dataclass(frozen=True)
class Settings:
    """A profile, loaded once, as the typed values the CLI, the API and the backends read."""

    name: str
    fps: float
    crf: int
    preset: str
    grid: int
    max_size: int
    motion_model: str
    steps: int
    backend: str
    threads: int
    device: int
    cuda_graphs: bool
    fused_warp: bool
    streams: int
    frame_slots: int
    precision: tuple[tuple[str, str], ...]
    stream: StreamSettings
    serve_capacity: int = 1
    serve_steps: int = 4
    render_cubic: bool = True  # builtin renderer: bicubic sampling of moved pixels
    serve_cubic: bool = False  # the same for `talkrt serve` sessions
    raw: tuple = ()  # the whole profile as sorted (key, value) pairs, for the build tools

    @property
    def profile(self) -> dict[str, Any]:
        return dict(self.raw)


def settings_from(p: dict[str, Any]) -> Settings:
    import json

    return Settings(name=p["name"], fps=p["video"]["fps"], crf=p["video"]["crf"], preset=p["video"]["preset"],
                    grid=p["render"]["grid"], max_size=p["render"]["max_size"], motion_model=p["motion"]["model"],
                    steps=p["motion"]["steps"], backend=p["engine"]["backend"], threads=p["engine"]["threads"],
                    device=p["engine"]["device"], cuda_graphs=p["runtime"]["cuda_graphs"],
                    fused_warp=p["runtime"]["fused_warp"], streams=p["runtime"]["streams"],
                    frame_slots=p["runtime"]["frame_slots"], precision=tuple(sorted(p["precision"].items())),
                    stream=StreamSettings(**p["stream"]), serve_capacity=p["serve"]["capacity"],
                    serve_steps=p["serve"]["steps"], render_cubic=bool(p["render"].get("cubic", True)),
                    serve_cubic=bool(p["serve"].get("cubic", False)),
                    raw=tuple(sorted((k, json.loads(json.dumps(v))) for k, v in p.items())))


_SETTINGS: dict[str, Settings] = {}


def load_settings(name: str = "cpu") -> Settings:
    """The profile's settings; a named profile is read once per process."""
    if name not in _SETTINGS or Path(name).suffix == ".toml":
        _SETTINGS[name] = settings_from(load_profile(name))
    return _SETTINGS[name]
