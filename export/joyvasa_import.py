"""Load JoyVASA's public files: the motion generator checkpoint and motion_template.pkl.

The checkpoint is `{"model": state_dict, "args": argparse.Namespace}` (with the fine-tuned HuBERT
under `audio_encoder.*`); it is read with torch's weights-only unpickler, admitting only
`argparse.Namespace` and `pathlib` paths besides tensors. motion_template.pkl is a plain pickle of
numpy arrays; it is read with a restricted unpickler that admits numpy's array reconstruction and
nothing else, so a hostile file cannot run code.
"""
from __future__ import annotations

import argparse
import pathlib
import pickle
from pathlib import Path

import numpy as np
import torch

from talkrt.export.liveportrait_import import load_strict
from talkrt.models.joyvasa import JoyVASAConfig, JoyVASAMotion
from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.liveportrait.motion import denormalize  # noqa: F401  (re-exported for the export side)

_TEMPLATE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
}


class _TemplateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _TEMPLATE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_motion_template(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise TalkrtError(path, "motion template is missing")
    try:
        with open(path, "rb") as f:
            data = _TemplateUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise TalkrtError(path, f"not a motion template ({exc})") from None
    need = [f"{p}_{k}" for k in ("exp",) for p in ("mean", "std")]
    need += [f"{p}_{k}" for k in ("scale", "t", "pitch", "yaw", "roll") for p in ("min", "max")]
    if not isinstance(data, dict) or any(k not in data for k in need):
        raise TalkrtError(path, "motion template lacks " + ", ".join(k for k in need if not isinstance(data, dict) or k not in data))
    return {k: np.asarray(v, np.float32) for k, v in data.items()}


def read_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """(state_dict, args as a dict)."""
    path = Path(path)
    if not path.is_file():
        raise TalkrtError(path, "JoyVASA checkpoint is missing")
    try:
        with torch.serialization.safe_globals([argparse.Namespace, pathlib.PosixPath, pathlib.WindowsPath,
                                               pathlib.PurePosixPath, pathlib.PureWindowsPath]):
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TalkrtError(path, f"not a JoyVASA checkpoint, or it holds objects talkrt refuses to unpickle "
                                f"({exc.__class__.__name__})") from None
    if not isinstance(ck, dict) or "model" not in ck or "args" not in ck:
        raise TalkrtError(path, "expected a dict with 'model' and 'args'")
    args = vars(ck["args"]) if isinstance(ck["args"], argparse.Namespace) else dict(ck["args"])
    return ck["model"], args


def load_joyvasa(path: str | Path, legacy_pe: bool = True) -> tuple[JoyVASAMotion, dict, dict]:
    """(model, args, audio-encoder state dict). `legacy_pe` is on for the public weights."""
    state, args = read_checkpoint(path)
    audio = {k[len("audio_encoder."):]: v for k, v in state.items() if k.startswith("audio_encoder.")}
    rest = {k: v for k, v in state.items() if not k.startswith("audio_encoder.")}
    try:
        cfg = JoyVASAConfig.from_args(args, legacy_pe=legacy_pe)
    except (KeyError, ValueError) as exc:
        raise TalkrtError(path, f"checkpoint args are not usable ({exc})") from None
    return load_strict(JoyVASAMotion(cfg), rest, str(path)), args, audio
