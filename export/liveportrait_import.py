"""Load LivePortrait checkpoints of the public layout into talkrt's module definitions.

Strict: a missing, unexpected or mis-shaped key is an error naming it. `.pth` files are read with
`torch.load(weights_only=True)` (no arbitrary unpickling); `.safetensors` re-uploads are read with
safetensors. Spectral norm (G) is folded into plain weights; the DDP `module.` prefix (S) is stripped.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
from torch import nn

from talkrt.models.lp_appearance import AppearanceFeatureExtractor
from talkrt.models.lp_motion import MotionExtractor
from talkrt.models.lp_spade import SPADEDecoder
from talkrt.models.lp_stitching import StitchingRetargetingNetwork
from talkrt.models.lp_warping import WarpingNetwork
from talkrt.runtime.errors import TalkrtError

# the public models.yaml
PUBLIC_CONFIG = {
    "appearance_feature_extractor_params": dict(image_channel=3, block_expansion=64, num_down_blocks=2, max_features=512,
                                                reshape_channel=32, reshape_depth=16, num_resblocks=6),
    "motion_extractor_params": dict(num_kp=21, backbone="convnextv2_tiny"),
    "warping_module_params": dict(num_kp=21, block_expansion=64, max_features=512, num_down_blocks=2, reshape_channel=32,
                                  estimate_occlusion_map=True,
                                  dense_motion_params=dict(block_expansion=32, max_features=1024, num_blocks=5,
                                                           reshape_depth=16, compress=4)),
    "spade_generator_params": dict(upscale=2, block_expansion=64, max_features=512, num_down_blocks=2),
    "stitching_retargeting_module_params": {
        "stitching": dict(input_size=126, hidden_sizes=[128, 128, 64], output_size=65),
        "lip": dict(input_size=65, hidden_sizes=[128, 128, 64], output_size=63),
        "eye": dict(input_size=66, hidden_sizes=[256, 256, 128, 128, 64], output_size=63),
    },
}
BASE_MODULES = {  # file stem -> (class, config key)
    "appearance_feature_extractor": (AppearanceFeatureExtractor, "appearance_feature_extractor_params"),
    "motion_extractor": (MotionExtractor, "motion_extractor_params"),
    "warping_module": (WarpingNetwork, "warping_module_params"),
    "spade_generator": (SPADEDecoder, "spade_generator_params"),
}
STITCHING_PARTS = {"retarget_shoulder": "stitching", "retarget_mouth": "lip", "retarget_eye": "eye"}
_SPECTRAL = re.compile(r"(.*\.conv_[01s])\.weight$")


def build(stem: str, config: dict = PUBLIC_CONFIG) -> nn.Module:
    cls, key = BASE_MODULES[stem]
    return cls(**copy.deepcopy(config[key]))


def build_stitching(config: dict = PUBLIC_CONFIG) -> dict[str, nn.Module]:
    params = config["stitching_retargeting_module_params"]
    return {part: StitchingRetargetingNetwork(**params[name]) for part, name in STITCHING_PARTS.items()}


def read_checkpoint(path: str | Path) -> dict:
    """A state dict (or dict of state dicts) from .pth (weights only) or .safetensors."""
    path = Path(path)
    if not path.is_file():
        raise TalkrtError(path, "checkpoint file is missing")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
        parts = {p: {k[len(p) + 1:]: v for k, v in flat.items() if k.startswith(p + ".")} for p in STITCHING_PARTS}
        return parts if all(parts.values()) else flat
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError or a torch error on non-tensor content
        raise TalkrtError(path, f"not a plain weights file; refusing to unpickle it ({exc.__class__.__name__})") from None


def fold_spectral_norm(state: dict) -> dict:
    """weight_orig / sigma with sigma = u . (W_mat v), the eval-mode weight of torch's spectral_norm."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight_orig"):
            base = key[: -len(".weight_orig")]
            u, v = state[base + ".weight_u"], state[base + ".weight_v"]
            sigma = torch.dot(u, value.reshape(value.shape[0], -1) @ v)
            out[base + ".weight"] = value / sigma
        elif not key.endswith((".weight_u", ".weight_v")):
            out[key] = value
    return out


def strip_ddp(state: dict) -> dict:
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_strict(model: nn.Module, state: dict, where: str) -> nn.Module:
    """load_state_dict with errors that name the offending key."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing:
        raise TalkrtError(where, f"checkpoint lacks key {missing[0]!r}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
    if extra:
        raise TalkrtError(where, f"checkpoint has unexpected key {extra[0]!r}" + (f" (+{len(extra) - 1} more)" if len(extra) > 1 else ""))
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise TalkrtError(where, f"key {k!r} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_module(stem: str, path: str | Path, config: dict = PUBLIC_CONFIG) -> nn.Module:
    state = read_checkpoint(path)
    if stem == "spade_generator":
        state = fold_spectral_norm(state)
    return load_strict(build(stem, config), state, str(path))


def load_stitching(path: str | Path, config: dict = PUBLIC_CONFIG) -> dict[str, nn.Module]:
    state = read_checkpoint(path)
    nets = build_stitching(config)
    for part, net in nets.items():
        if part not in state:
            raise TalkrtError(path, f"checkpoint lacks part {part!r}")
        load_strict(net, strip_ddp(state[part]), f"{path} [{part}]")
    return nets


def public_key_shapes(model: nn.Module, spectral: bool = False) -> dict[str, tuple]:
    """Key -> shape as the public file stores it (spectral-normed convs as weight_orig/u/v)."""
    out = {}
    for key, value in model.state_dict().items():
        m = _SPECTRAL.match(key) if spectral else None
        if m:
            w = tuple(value.shape)
            out[m.group(1) + ".weight_orig"] = w
            out[m.group(1) + ".weight_u"] = (w[0],)
            out[m.group(1) + ".weight_v"] = (int(torch.tensor(w[1:]).prod()),)
        else:
            out[key] = tuple(value.shape)
    return out


def find_files(weights_dir: str | Path) -> dict[str, Path]:
    """Locate the five files in the public layout (or a flat folder of .pth/.safetensors)."""
    root = Path(weights_dir)
    found = {}
    for stem in list(BASE_MODULES) + ["stitching_retargeting_module"]:
        sub = "retargeting_models" if stem.startswith("stitching") else "base_models"
        for cand in (root / "liveportrait" / sub / f"{stem}.pth", root / sub / f"{stem}.pth", root / f"{stem}.pth",
                     root / f"{stem}.safetensors"):
            if cand.is_file():
                found[stem] = cand
                break
        else:
            raise TalkrtError(root, f"no {stem}.pth or .safetensors found (expected liveportrait/{sub}/{stem}.pth)")
    return found
