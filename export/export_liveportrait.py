"""Export the LivePortrait family's stages to ONNX (opset 20, for the 5-D GridSample), with tensor
names from the stage vocabulary, plus a manifest the runtime reads.

    python -m talkrt.export.export_liveportrait --weights DIR --out DIR [--hubert DIR]

Files written (all batch 1 except the motion denoiser, whose batch is dynamic for guidance):
  appearance.onnx   image [1,3,256,256] -> feature_3d [1,32,16,64,64]              (F)
  motion_extractor.onnx image -> pitch, yaw, roll [1,66], t [1,3], exp [1,63], scale [1,1], kp [1,63]  (M)
  warp.onnx         feature_3d, kp_driving, kp_source -> warped [1,256,64,64]        (W)
  decode.onnx       warped -> image [1,3,512,512]                                    (G)
  stitching.onnx, stitching_lip.onnx, stitching_eye.onnx   x -> delta                (S)
  motion.onnx       motion_noisy, audio, prev_motion, prev_audio, step -> motion     (JoyVASA denoiser)
  audio_enc.onnx    waveform [1,N] 16 kHz -> audio_features [1,T,d] at 50 Hz         (HuBERT + JoyVASA's map)
  motion_start.npz  start and null features, schedule; motion_template.json; manifest.json
  torch/            each stage's state dict (.pt, read weights-only) + config.json, for the runtime's
                    torch backend (runtime/backends/torch_liveportrait.py), which builds the modules
                    from talkrt.models
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkrt.export import liveportrait_import as lpi
from talkrt.export.joyvasa_import import load_joyvasa, read_motion_template
from talkrt.models.joyvasa import AudioEncoder
from talkrt.models.lp_motion import OUTPUTS as M_OUTPUTS

OPSET = 20


class _WarpOut(nn.Module):
    def __init__(self, w: nn.Module):
        super().__init__()
        self.w = w

    def forward(self, feature_3d, kp_driving, kp_source):
        return self.w(feature_3d, kp_driving, kp_source)[0]


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict | None = None):
    module.eval()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no ONNX form
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, opset_version=OPSET,
                          dynamic_axes=dynamic, dynamo=False, do_constant_folding=True)
    return path


def load_hubert(hubert_dir: Path, state: dict | None = None) -> nn.Module:
    """transformers' HubertModel (or Wav2Vec2Model) from a local directory; the JoyVASA checkpoint's
    fine-tuned encoder weights replace the directory's when given."""
    from transformers import AutoConfig, HubertModel, Wav2Vec2Model

    config = AutoConfig.from_pretrained(hubert_dir, local_files_only=True)
    cls = HubertModel if config.model_type == "hubert" else Wav2Vec2Model
    if state:
        model = cls(config)
        lpi.load_strict(model, {k: v for k, v in state.items() if k in model.state_dict()}, f"{hubert_dir} (audio_encoder)")
    else:
        model = cls.from_pretrained(hubert_dir, local_files_only=True)
    return model.eval()


def export_all(weights: Path, out: Path, hubert_dir: Path | None = None, config: dict = lpi.PUBLIC_CONFIG,
               legacy_pe: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    files = lpi.find_files(weights)
    f = lpi.load_module("appearance_feature_extractor", files["appearance_feature_extractor"], config)
    m = lpi.load_module("motion_extractor", files["motion_extractor"], config)
    w = lpi.load_module("warping_module", files["warping_module"], config)
    g = lpi.load_module("spade_generator", files["spade_generator"], config)
    s = lpi.load_stitching(files["stitching_retargeting_module"], config)
    torch_dir = out / "torch"
    torch_dir.mkdir(exist_ok=True)
    torch_config = {"liveportrait": config}
    for name, module in (("appearance", f), ("motion_extractor", m), ("warp", w), ("decode", g),
                         ("stitching", s["retarget_shoulder"])):
        torch.save(module.state_dict(), torch_dir / f"{name}.pt")
    img = torch.rand(1, 3, 256, 256)
    _export(f, (img,), out / "appearance.onnx", ["image"], ["feature_3d"])
    _export(m, (img,), out / "motion_extractor.onnx", ["image"], list(M_OUTPUTS))
    with torch.no_grad():
        feat = f(img)
        kp = torch.rand(1, 21, 3) * 0.4 - 0.2
        warped = w(feat, kp, kp)[0]
    _export(_WarpOut(w), (feat, kp, kp + 0.01), out / "warp.onnx", ["feature_3d", "kp_driving", "kp_source"], ["warped"])
    _export(g, (warped,), out / "decode.onnx", ["warped"], ["image"])
    for part, name in (("retarget_shoulder", "stitching"), ("retarget_mouth", "stitching_lip"), ("retarget_eye", "stitching_eye")):
        n_in = s[part].mlp[0].in_features
        _export(s[part], (torch.rand(1, n_in),), out / f"{name}.onnx", ["x"], ["delta"])

    jv_dir = weights / "JoyVASA" if (weights / "JoyVASA").is_dir() else weights
    ckpt = next((p for p in sorted(jv_dir.rglob("*.pt"))), None)
    manifest = {"config": config, "files": {}}
    if ckpt is not None:
        jv, args, audio_state = load_joyvasa(ckpt, legacy_pe=legacy_pe)
        c = jv.cfg
        ex = (torch.randn(2, c.n_motions, c.motion_feat_dim), torch.randn(2, c.n_motions, c.feature_dim),
              torch.randn(2, c.n_prev_motions, c.motion_feat_dim), torch.randn(2, c.n_prev_motions, c.feature_dim),
              torch.tensor([3.0, 7.0]))
        names = ["motion_noisy", "audio", "prev_motion", "prev_audio", "step"]
        _export(jv.denoising_net, ex, out / "motion.onnx", names, ["motion"],
                {n: {0: "batch"} for n in names + ["motion"]})
        torch.save(jv.denoising_net.state_dict(), torch_dir / "motion.pt")
        torch_config["joyvasa"] = dataclasses.asdict(c)
        sched = {k: v.numpy() for k, v in jv.diffusion_sched.named_buffers()}
        np.savez(out / "motion_start.npz", start_audio=jv.start_audio_feat.detach().numpy()[0],
                 start_motion=jv.start_motion_feat.detach().numpy()[0], null_audio=jv.null_audio_feat.detach().numpy()[0, 0],
                 **sched)
        manifest["joyvasa"] = {"args": {k: v for k, v in args.items() if isinstance(v, (int, float, str, bool))},
                               "legacy_pe": legacy_pe, "n_motions": c.n_motions, "n_prev_motions": c.n_prev_motions,
                               "motion_feat_dim": c.motion_feat_dim, "n_diff_steps": c.n_diff_steps}
        tpl = next(iter(sorted(jv_dir.rglob("motion_template.pkl"))), None)
        if tpl is None:
            raise FileNotFoundError(f"motion_template.pkl not found under {jv_dir}")
        template = read_motion_template(tpl)
        (out / "motion_template.json").write_text(json.dumps({k: v.tolist() for k, v in template.items()}))
        if hubert_dir is not None:
            hubert = load_hubert(hubert_dir, audio_state or None)
            wave = torch.randn(1, 16000)
            enc = AudioEncoder(hubert, jv.audio_feature_map)
            _export(enc, (wave,), out / "audio_enc.onnx", ["waveform"],
                    ["audio_features"], {"waveform": {1: "samples"}, "audio_features": {1: "frames"}})
            torch.save(enc.state_dict(), torch_dir / "audio_enc.pt")
            torch_config["hubert"] = {"model_type": hubert.config.model_type, **hubert.config.to_diff_dict()}
    (torch_dir / "config.json").write_text(json.dumps(torch_config, indent=1))
    for p in sorted(out.glob("*.onnx")):
        manifest["files"][p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True, help="folder with liveportrait/ (and JoyVASA/) files")
    ap.add_argument("--hubert", type=Path, help="local transformers HuBERT/wav2vec2 folder (config.json + weights)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=Path, help="models.yaml-like JSON (default: the public config)")
    ap.add_argument("--fixed-pe", action="store_true", help="JoyVASA weights trained after the positional-encoding fix")
    args = ap.parse_args()
    config = json.loads(args.config.read_text()) if args.config else lpi.PUBLIC_CONFIG
    export_all(args.weights, args.out, args.hubert, config, legacy_pe=not args.fixed_pe)
    print(f"exported to {args.out}")


if __name__ == "__main__":
    main()
