"""Per-stage milliseconds of the liveportrait family at the full public size, on ONNX Runtime.

Random weights (the timings do not depend on their values): builds every module at the public
config, exports each stage as `talkrt.export.export_liveportrait` does, then times the ONNX
stages (median and p99 of N runs after one warm-up), prints a Markdown table and appends a JSON
record to benchmarks/results/liveportrait.jsonl. The baseline the GPU path improves on.

    python benchmarks/bench_liveportrait.py [--runs 3] [--skip-audio]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import commit, machine, versions  # noqa: E402

from talkrt.export import liveportrait_import as lpi  # noqa: E402
from talkrt.export.export_liveportrait import _export, _WarpOut  # noqa: E402
from talkrt.models.joyvasa import AudioEncoder  # noqa: E402
from talkrt.models.joyvasa import JoyVASAConfig, JoyVASAMotion  # noqa: E402
from talkrt.models.lp_motion import OUTPUTS  # noqa: E402
from talkrt.runtime.engine import open_engine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(engine, feeds, runs):
    engine.run(feeds)  # warm-up
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        engine.run(feeds)
        ms.append((time.perf_counter() - t) * 1000)
    return float(np.median(ms)), float(np.percentile(ms, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-audio", action="store_true", help="leave out HuBERT-base (its export takes a minute)")
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        f, m = lpi.build("appearance_feature_extractor").eval(), lpi.build("motion_extractor").eval()
        w, g = lpi.build("warping_module").eval(), lpi.build("spade_generator").eval()
        s = lpi.build_stitching()["retarget_shoulder"].eval()
        img = torch.rand(1, 3, 256, 256)
        kp = torch.rand(1, 21, 3) * 0.4 - 0.2
        with torch.no_grad():
            feat = f(img)
            warped = w(feat, kp, kp)[0]
        _export(f, (img,), tmp / "appearance.onnx", ["image"], ["feature_3d"])
        _export(m, (img,), tmp / "motion_extractor.onnx", ["image"], list(OUTPUTS))
        _export(_WarpOut(w), (feat, kp, kp), tmp / "warp.onnx", ["feature_3d", "kp_driving", "kp_source"], ["warped"])
        _export(g, (warped,), tmp / "decode.onnx", ["warped"], ["image"])
        _export(s, (torch.rand(1, 126),), tmp / "stitching.onnx", ["x"], ["delta"])
        jv = JoyVASAMotion(JoyVASAConfig(feature_dim=256)).eval()
        c = jv.cfg
        names = ["motion_noisy", "audio", "prev_motion", "prev_audio", "step"]
        ex = (torch.randn(2, c.n_motions, 70), torch.randn(2, c.n_motions, 256), torch.randn(2, c.n_prev_motions, 70),
              torch.randn(2, c.n_prev_motions, 256), torch.tensor([3.0, 7.0]))
        _export(jv.denoising_net, ex, tmp / "motion.onnx", names, ["motion"], {n: {0: "batch"} for n in names + ["motion"]})
        img_np = img.numpy()
        stages = [
            ("appearance (F)", "appearance", {"image": img_np}, "portrait"),
            ("appearance (M)", "motion_extractor", {"image": img_np}, "portrait"),
            ("warp (W)", "warp", {"feature_3d": feat.numpy(), "kp_driving": kp.numpy(), "kp_source": kp.numpy()}, "frame"),
            ("decode (G)", "decode", {"warped": warped.numpy()}, "frame"),
            ("stitching (S)", "stitching", {"x": rng.random((1, 126), np.float32)}, "frame"),
            ("motion (JoyVASA, one step, CFG batch 2)", "motion", {n: t.numpy() for n, t in zip(names, ex)},
             "step (50 per 100 frames)"),
        ]
        if not args.skip_audio:
            from transformers import HubertConfig, HubertModel

            hub = HubertModel(HubertConfig()).eval()  # hubert-base size
            _export(AudioEncoder(hub, jv.audio_feature_map), (torch.randn(1, 64000),), tmp / "audio_enc.onnx", ["waveform"],
                    ["audio_features"], {"waveform": {1: "samples"}, "audio_features": {1: "frames"}})
            stages.append(("audio_enc (HuBERT-base + map)", "audio_enc",
                           {"waveform": rng.standard_normal((1, 64000)).astype(np.float32)}, "4 s of audio"))
        for label, name, feeds, per in stages:
            med, p99 = timed(open_engine(tmp / f"{name}.onnx"), feeds, args.runs)
            rows.append({"stage": label, "per": per, "median_ms": med, "p99_ms": p99})
    print("\n| stage | per | median ms | p99 ms |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['per']} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} |")
    frame_ms = sum(r["median_ms"] for r in rows if r["per"] == "frame")
    print(f"\nrenderer per frame (W + G + S): {frame_ms / 1000:.2f} s on ONNX Runtime CPU")
    rec = {"bench": "liveportrait_stages", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(),
           "machine": machine(), "versions": versions(), "profile": "cpu", "stages": rows}
    out = ROOT / "benchmarks" / "results" / "liveportrait.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
