"""Profiles: TOML data, a defaults file plus per-device deltas; unknown keys are errors."""
from __future__ import annotations

import tomllib
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


def profile_hash(p: dict[str, Any]) -> str:
    """Hash of what an engine build depends on (precision, shapes, build): engines record it."""
    import hashlib
    import json

    keyed = {k: p[k] for k in ("precision", "shapes", "build")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
