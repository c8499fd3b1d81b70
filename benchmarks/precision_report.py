"""Per-stage accuracy of FP16 (AutoCast) and INT8 (Q/DQ) against FP32, on ONNX Runtime CPU.

For each stage and precision: the largest output difference and the PSNR of the rendered 8-bit
frames that pass through that stage (everything else FP32), judged by the profile's [accuracy]
bounds; writes precision_report.json beside the variants and appends a record to
benchmarks/results/precision.jsonl.

- builtin `motion` (the trained, shipped model): calibration = the denoiser inputs met while
  generating motion for the first half of the example speech; evaluation = whole-clip renders of
  the example portrait, frames from the FP32 model vs the variant.
- liveportrait F (appearance), W (warp), G (decode), S (stitching) at the public size with random weights (the
  public checkpoints cannot be downloaded here): the source is the real crop of the example
  portrait, driving keypoints are its own keypoints turned through a head-yaw sweep; calibration and
  evaluation use different angles. Random weights make these numbers a statement about numeric
  robustness of the graph, not about the trained model's images.

    python benchmarks/precision_report.py --profile rtx4090 [--skip-liveportrait]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import commit, machine, versions  # noqa: E402

from talkrt.export.precision import (StageAccuracy, autocast_fp16, psnr_db, qdq_nodes,  # noqa: E402
                                     quantize_int8, verdict, write_report)
from talkrt.runtime.engine import MODEL_DIR, open_engine  # noqa: E402
from talkrt.runtime.profiles import load_profile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """Wraps an engine, keeps every feed it sees (calibration data from a real run)."""

    def __init__(self, engine):
        self.engine, self.feeds = engine, []
        self.inputs, self.outputs = engine.inputs, engine.outputs

    def run(self, feeds):
        self.feeds.append({k: np.array(v) for k, v in feeds.items()})
        return self.engine.run(feeds)


def stack(feeds: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]}


def builtin_motion(tmp: Path, accuracy: dict) -> list[StageAccuracy]:
    from talkrt.runtime.audio_enc import encode
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.builtin.diffusion_motion import DiffusionMotion
    from talkrt.runtime.motion import MotionControls
    from talkrt.runtime.avatar import Avatar, AvatarOptions

    src = MODEL_DIR / "motion_builtin.onnx"
    audio = load_audio(ROOT / "examples" / "speech.wav")
    avatar = Avatar.prepare(ROOT / "examples" / "portrait.jpg", AvatarOptions(crop=True, motion="diffusion"))
    controls = MotionControls()
    feats_all = encode(audio, avatar.fps, phones=True)
    feats_half = encode(audio[: len(audio) // 2], avatar.fps, phones=True)
    model = DiffusionMotion(src)
    model.engine = rec = Recorder(model.engine)
    model.generate(feats_half, controls)
    calibration = stack(rec.feeds)
    variants = {"fp16": autocast_fp16(src, tmp / "motion_builtin.fp16.onnx"),
                "int8": quantize_int8(src, tmp / "motion_builtin.int8.onnx", calibration, high_precision="fp32")}

    def render(path):
        mm = DiffusionMotion(src)  # config and statistics from the FP32 model's JSON
        mm.engine = open_engine(path)
        motion = mm.generate(feats_all, controls)
        renderer = avatar.renderer()
        return motion, np.stack([renderer.render(row).copy() for row in motion])

    ref_motion, ref_frames = render(src)
    out = []
    for precision, path in variants.items():
        motion, frames = render(path)
        out.append(verdict("motion_builtin.onnx", precision, float(np.abs(motion - ref_motion).max()),
                           psnr_db(ref_frames, frames), len(frames), accuracy,
                           qdq_nodes(path) if precision == "int8" else None))
    return out


def _frame(image: np.ndarray) -> np.ndarray:
    return np.clip(image[0].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)


def liveportrait(tmp: Path, accuracy: dict, n_calib: int, n_eval: int) -> list[StageAccuracy]:
    import cv2
    import torch

    from talkrt.export import liveportrait_import as lpi
    from talkrt.export.export_liveportrait import _export, _WarpOut
    from talkrt.models.lp_motion import OUTPUTS
    from talkrt.runtime.face import FaceAnalyzer
    from talkrt.runtime.image_io import load_image
    from talkrt.runtime.liveportrait.keypoints import apply_stitching
    from talkrt.runtime.liveportrait.pipeline import CROP_SIZE, lp_crop

    torch.manual_seed(0)
    f, m = lpi.build("appearance_feature_extractor").eval(), lpi.build("motion_extractor").eval()
    w, g = lpi.build("warping_module").eval(), lpi.build("spade_generator").eval()
    s_net = lpi.build_stitching()["retarget_shoulder"].eval()
    photo = load_image(ROOT / "examples" / "portrait.jpg")
    crop = cv2.warpAffine(photo, lp_crop(photo, FaceAnalyzer().analyze(photo, 0, "portrait").points),
                          (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_AREA)
    x = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    with torch.no_grad():
        feat = f(torch.from_numpy(x))
        kp = m(torch.from_numpy(x))[-1].view(1, 21, 3)
        warped = w(feat, kp, kp)[0]
    _export(f, (torch.from_numpy(x),), tmp / "appearance.onnx", ["image"], ["feature_3d"])
    _export(m, (torch.from_numpy(x),), tmp / "motion_extractor.onnx", ["image"], list(OUTPUTS))
    _export(_WarpOut(w), (feat, kp, kp), tmp / "warp.onnx", ["feature_3d", "kp_driving", "kp_source"], ["warped"])
    _export(g, (warped,), tmp / "decode.onnx", ["warped"], ["image"])
    _export(s_net, (torch.rand(1, 126),), tmp / "stitching.onnx", ["x"], ["delta"])
    kp_s = kp.numpy().astype(np.float32)

    def yaw(deg):
        r = np.deg2rad(deg)
        rot = np.array([[np.cos(r), 0, np.sin(r)], [0, 1, 0], [-np.sin(r), 0, np.cos(r)]], np.float32)
        return (kp_s @ rot.T).astype(np.float32)

    F, W, G, S = (open_engine(tmp / f"{n}.onnx") for n in ("appearance", "warp", "decode", "stitching"))
    feat_np = F.run({"image": x})["feature_3d"]
    angles_c = np.linspace(-20, 20, n_calib)
    angles_e = np.linspace(-17, 17, n_eval) + 1.5  # between the calibration angles
    w_feeds = [{"feature_3d": feat_np, "kp_driving": yaw(a), "kp_source": kp_s} for a in angles_c]
    g_feeds = [{"warped": W.run(fd)["warped"]} for fd in w_feeds]
    e_feeds = [{"feature_3d": feat_np, "kp_driving": yaw(a), "kp_source": kp_s} for a in angles_e]
    e_warped = [W.run(fd)["warped"] for fd in e_feeds]
    e_ref = [G.run({"warped": wp})["image"] for wp in e_warped]
    ref_frames = np.stack([_frame(im) for im in e_ref])
    out = []
    s_feeds = [{"x": np.concatenate([kp_s.reshape(1, -1), fd["kp_driving"].reshape(1, -1)], 1)} for fd in w_feeds]
    calib = {"appearance": {"image": x}, "warp": stack(w_feeds), "decode": stack(g_feeds), "stitching": stack(s_feeds)}
    e_stitch = [{"x": np.concatenate([kp_s.reshape(1, -1), fd["kp_driving"].reshape(1, -1)], 1)} for fd in e_feeds]
    e_delta = [S.run(fd)["delta"] for fd in e_stitch]
    # frames through stitching: driving keypoints corrected by S's delta, then W and G in FP32
    stitched = lambda deltas: [G.run({"warped": W.run({**fd, "kp_driving": apply_stitching(dl, fd["kp_driving"])})["warped"]})["image"]
                               for fd, dl in zip(e_feeds, deltas)]
    ref_stitched = np.stack([_frame(im) for im in stitched(e_delta)])
    for stage in ("appearance", "warp", "decode", "stitching"):
        src = tmp / f"{stage}.onnx"
        for precision in ("fp16", "int8"):
            t0 = time.perf_counter()
            dst = tmp / f"{stage}.{precision}.onnx"
            if precision == "fp16":
                autocast_fp16(src, dst)
            else:
                quantize_int8(src, dst, calib[stage], high_precision="fp32")
            v = open_engine(dst)
            if stage == "appearance":
                feat_v = v.run({"image": x})["feature_3d"]
                err = float(np.abs(feat_v - feat_np).max())
                images = [G.run({"warped": W.run({**fd, "feature_3d": feat_v})["warped"]})["image"] for fd in e_feeds]
            elif stage == "warp":
                outs = [v.run(fd)["warped"] for fd in e_feeds]
                err = max(float(np.abs(a - b).max()) for a, b in zip(outs, e_warped))
                images = [G.run({"warped": o})["image"] for o in outs]
            elif stage == "decode":
                images = [v.run({"warped": wp})["image"] for wp in e_warped]
                err = max(float(np.abs(a - b).max()) for a, b in zip(images, e_ref))
            else:
                deltas = [v.run(fd)["delta"] for fd in e_stitch]
                err = max(float(np.abs(a - b).max()) for a, b in zip(deltas, e_delta))
                images = stitched(deltas)
            frames = np.stack([_frame(im) for im in images])
            ref = ref_stitched if stage == "stitching" else ref_frames
            out.append(verdict(f"{stage}.onnx", precision, err, psnr_db(ref, frames), len(frames), accuracy,
                               qdq_nodes(dst) if precision == "int8" else None))
            print(f"  {stage} {precision}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="rtx4090")
    ap.add_argument("--skip-liveportrait", action="store_true")
    ap.add_argument("--calib-frames", type=int, default=6)
    ap.add_argument("--eval-frames", type=int, default=3)
    ap.add_argument("--out", type=Path, help="keep the variants and precision_report.json here")
    args = ap.parse_args()
    accuracy = load_profile(args.profile)["accuracy"]
    with tempfile.TemporaryDirectory() as t:
        tmp = args.out or Path(t)
        tmp.mkdir(parents=True, exist_ok=True)
        results = builtin_motion(tmp, accuracy)
        if not args.skip_liveportrait:
            results += liveportrait(tmp, accuracy, args.calib_frames, args.eval_frames)
        write_report(tmp, results)
    print(f"\nprofile {args.profile}: fp16/int8 bounds {accuracy['frame_min_psnr_db']}/{accuracy['int8_frame_min_psnr_db']} dB"
          "\n\n| stage file | precision | max abs err | frame PSNR dB | frames | ships |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.file} | {r.precision} | {r.max_abs:.4g} | {r.frame_psnr_db:.1f} | {r.frames} | {'yes' if r.ships else 'no'} |")
    rec = {"bench": "precision", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(), "machine": machine(),
           "versions": versions(), "profile": args.profile, "results": [r.__dict__ for r in results],
           "note": "liveportrait rows use random weights at the public size"}
    path = ROOT / "benchmarks" / "results" / "precision.jsonl"
    with open(path, "a") as fh:
        fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
