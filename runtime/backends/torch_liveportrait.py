"""The liveportrait family on the `torch` backend: each stage a talkrt.models module on a CUDA
device, at the profile's precision, W with talkrt's fused Triton warp and W/G/S as CUDA graphs.

The modules are built from `<onnx folder>/torch/config.json` and the stage state dicts the export
step wrote beside the ONNX files (read weights-only), so the runtime needs torch and talkrt.models
but none of the export tooling. Engines take numpy arrays or device tensors and return device
tensors: W's output goes to G without leaving the device; only what the host needs (the stitching
delta, JoyVASA's x0, the finished face) is copied out, by the caller (`engine.to_host`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkrt.runtime.backends.torch_backend import TorchStage
from talkrt.runtime.engine import TensorSpec
from talkrt.runtime.errors import TalkrtError

IO = {  # stage -> (inputs, outputs), the names the ONNX files use
    "appearance": (("image",), ("feature_3d",)),
    "motion_extractor": (("image",), ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")),
    "warp": (("feature_3d", "kp_driving", "kp_source"), ("warped",)),
    "decode": (("warped",), ("image",)),
    "stitching": (("x",), ("delta",)),
    "motion": (("motion_noisy", "audio", "prev_motion", "prev_audio", "step"), ("motion",)),
    "audio_enc": (("waveform",), ("audio_features",)),
}
GRAPH_SAFE = {"warp", "decode", "stitching"}  # JoyVASA's TransformerDecoder and HuBERT run eager


def default_device(settings) -> str:
    if not torch.cuda.is_available():
        raise TalkrtError(f"profile {settings.name}", "runs the torch backend, and no CUDA device is visible "
                          "(use --profile cpu)")
    return f"cuda:{settings.device}"


def build_module(name: str, config: dict) -> torch.nn.Module:
    """The stage's module, uninitialised, from the export's torch/config.json."""
    lp = config["liveportrait"]
    if name == "appearance":
        from talkrt.models.lp_appearance import AppearanceFeatureExtractor

        return AppearanceFeatureExtractor(**lp["appearance_feature_extractor_params"])
    if name == "motion_extractor":
        from talkrt.models.lp_motion import MotionExtractor

        return MotionExtractor(**lp["motion_extractor_params"])
    if name == "warp":
        from talkrt.models.lp_warping import WarpingNetwork

        return WarpingNetwork(**lp["warping_module_params"])
    if name == "decode":
        from talkrt.models.lp_spade import SPADEDecoder

        return SPADEDecoder(**lp["spade_generator_params"])
    if name == "stitching":
        from talkrt.models.lp_stitching import StitchingRetargetingNetwork

        return StitchingRetargetingNetwork(**lp["stitching_retargeting_module_params"]["stitching"])
    from talkrt.models.joyvasa import AudioEncoder, JoyVASAConfig, JoyVASAMotion

    if "joyvasa" not in config:
        raise TalkrtError("torch/config.json", "has no JoyVASA entry (export with the JoyVASA weights present)")
    jv = JoyVASAMotion(JoyVASAConfig(**config["joyvasa"]))
    if name == "motion":
        return jv.denoising_net
    if name == "audio_enc":
        if not config.get("hubert"):
            raise TalkrtError("torch/config.json", "has no audio encoder entry (export with --hubert)")
        from transformers import AutoConfig, HubertModel, Wav2Vec2Model

        h = dict(config["hubert"])
        kind = h.pop("model_type")
        cls = HubertModel if kind == "hubert" else Wav2Vec2Model
        return AudioEncoder(cls(AutoConfig.for_model(kind, **h)), jv.audio_feature_map)
    raise TalkrtError(f"stage {name}", "has no torch module")


class _FirstOutput(torch.nn.Module):
    """W returns (warped, occlusion, deformation); the stage's output is the first."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        return self.module(*args)[0]


class TorchEngine:
    """A stage on a torch device behind the Engine interface (named inputs in, named outputs out)."""

    def __init__(self, name: str, module: torch.nn.Module, settings, device: str):
        ins, outs = IO[name]
        self.name, self.device = name, torch.device(device)
        self.inputs = tuple(TensorSpec(n, (), "float32") for n in ins)
        self.outputs = tuple(TensorSpec(n, (), "float32") for n in outs)
        precision = dict(settings.precision).get(name, "fp32")
        graphs = settings.cuda_graphs and name in GRAPH_SAFE and self.device.type == "cuda"
        self.stage = TorchStage(module, precision, self.device, cuda_graphs=graphs, name=name)
        self._const: dict[int, tuple[Any, torch.Tensor]] = {}  # host arrays seen before (the avatar's volume)

    def _tensor(self, x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x
        key = id(x)
        hit = self._const.get(key)
        if hit is not None and hit[0] is x:
            return hit[1]
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)
        if x.nbytes > 1 << 20:  # a large array passed again and again: keep its device copy
            self._const[key] = (x, t)
        return t

    def run(self, feeds: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = self.stage(*(self._tensor(feeds[s.name]) for s in self.inputs))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {s.name: o for s, o in zip(self.outputs, out)}


def torch_engines(folder: Path, name: str, settings, device: str | None = None):
    """The engine of stage `name` for the exported `folder`, on `device` (default: the profile's GPU)."""
    device = device or default_device(settings)
    config_path = Path(folder) / "torch" / "config.json"
    weights = Path(folder) / "torch" / f"{name}.pt"
    if not config_path.is_file() or not weights.is_file():
        raise TalkrtError(Path(folder) / "torch", f"lacks {weights.name} or config.json (export again with this talkrt)")
    config = json.loads(config_path.read_text())
    module = build_module(name, config)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TalkrtError(weights, f"does not match the module (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if name == "warp":
        if settings.fused_warp and torch.device(device).type == "cuda":
            module.set_fused(True, keep_deformation=False)
        module = _FirstOutput(module)
    return TorchEngine(name, module.eval(), settings, device)
