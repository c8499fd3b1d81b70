"""Export a trained MotionDiT to ONNX for the runtime (`motion` stage), with its runtime config.

Tensor names follow the stage vocabulary: inputs `motion_noisy`, `t`, `audio`, `prev_motion`,
`prev_audio`, `controls`, `cond_mask`; output `motion` (the predicted clean window). The batch axis
is dynamic so that the guided passes (all conditions / no audio / no gaze) run as one batch.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from talkrt.models.motion_dit import MotionDiT, MotionDiTConfig

INPUTS = ("motion_noisy", "t", "audio", "prev_motion", "prev_audio", "controls", "cond_mask")


def load_motion(weights: Path, meta: dict) -> MotionDiT:
    model = MotionDiT(MotionDiTConfig(**meta["config"]))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def example_inputs(cfg: MotionDiTConfig, batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    n, k = cfg.window, cfg.context
    controls = torch.randn(batch, 3 + cfg.n_emotions, generator=g)
    mask = (torch.rand(batch, 5, generator=g) > 0.3).float()
    return (torch.randn(batch, n, cfg.motion_dim, generator=g), torch.rand(batch, generator=g),
            torch.randn(batch, n, cfg.audio_dim, generator=g), torch.randn(batch, k, cfg.motion_dim, generator=g),
            torch.randn(batch, k, cfg.audio_dim, generator=g), controls, mask)


def export_motion(weights: Path, meta_path: Path, onnx_path: Path) -> Path:
    meta = json.loads(Path(meta_path).read_text())
    model = load_motion(weights, meta)
    args = example_inputs(model.cfg)
    dyn = {name: {0: "batch"} for name in INPUTS}
    dyn["motion"] = {0: "batch"}
    torch.onnx.export(model, args, str(onnx_path), input_names=list(INPUTS), output_names=["motion"],
                      dynamic_axes=dyn, opset_version=17, dynamo=False)
    runtime_meta = {"config": meta["config"], "stats": meta["stats"], "fps": meta["fps"],
                    "inputs": list(INPUTS), "outputs": ["motion"]}
    Path(onnx_path).with_suffix(".json").write_text(json.dumps(runtime_meta, indent=1))
    print(f"wrote {onnx_path} ({Path(onnx_path).stat().st_size} bytes)")
    return Path(onnx_path)
