"""The GPU check: every kernel against its reference at real shapes, timed against its torch
equivalent; the LivePortrait renderer (W + G) eager FP32 vs FP16 + fused kernels + CUDA graphs; end
to end at 512x512 for both families through the torch backend. Prints one Markdown table, writes
it with a JSON record to --out (and appends to benchmarks/results/gpu_check.jsonl).

    python benchmarks/gpu_check.py --out $OUT            # on a CUDA machine, about 5-8 minutes
    python benchmarks/gpu_check.py --cpu-dry-run         # tiny shapes, Triton interpreter: checks the script

Full-size LivePortrait modules carry random weights (timing does not depend on their values).
Timing: warm-up discarded, CUDA events around each iteration, median and p99; throughput from
wall time over the whole run. A failed check marks its row FAIL and the exit code 1.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--cpu-dry-run", action="store_true", help="tiny shapes on CPU with the Triton interpreter")
ap.add_argument("--out", type=Path, help="folder for gpu_check.md / gpu_check.json")
ap.add_argument("--iters", type=int, default=50)
ap.add_argument("--only", action="append", help="run only these sections (kernels, cuda, renderer, builtin, liveportrait, stream)")
ARGS = ap.parse_args()
if ARGS.cpu_dry_run:
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "kernels"))
from bench_e2e import commit, machine, versions  # noqa: E402
from common import time_ms  # noqa: E402

from talkrt.kernels.attention import attention, attention_ref  # noqa: E402
from talkrt.kernels.grid_sample3d import grid_sample3d, grid_sample3d_ref  # noqa: E402
from talkrt.kernels.keypoint_warp import keypoint_warp, keypoint_warp_ref, motion_input, motion_input_ref  # noqa: E402
from talkrt.kernels.mesh_warp_triton import mesh_warp, mesh_warp_ref, mesh_warp_tables  # noqa: E402
from talkrt.runtime.backends.torch_backend import TorchCudaOps, TorchStage, on_stream, pinned_empty  # noqa: E402
from talkrt.runtime.profiles import load_profile  # noqa: E402
from talkrt.runtime.scheduler import FrameScheduler, HostOps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DRY = ARGS.cpu_dry_run
DEV = torch.device("cpu" if DRY else "cuda")
ITERS = 2 if DRY else ARGS.iters
PROFILE = load_profile("h100")
LOW = "fp32" if DRY else "fp16"  # CPU PyTorch lacks half kernels for some 3-D ops (avg_pool3d)
TARGETS = PROFILE["targets"]
ROWS: list[dict] = []
FAILED: list[str] = []


def sync() -> None:
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, iters: int = ITERS) -> tuple[float, float]:
    """(median ms, p99 ms) per call; device events on CUDA (benchmarks/kernels/common.py)."""
    return time_ms(fn, iters, DEV.type)


def row(section: str, name: str, check: str = "", ok: bool = True, ms: float | None = None, p99: float | None = None,
        ref_ms: float | None = None, target: str = "", **extra) -> None:
    speed = f"{ref_ms / ms:.2f}x" if ms and ref_ms else ""
    ROWS.append(dict(section=section, name=name, check=check, ok=ok, median_ms=ms, p99_ms=p99, ref_ms=ref_ms,
                     speedup=speed, target=target, **extra))
    if not ok:
        FAILED.append(f"{section}/{name}")
    print(f"  {section:12s} {name:44s} {check:28s} {'ok' if ok else 'FAIL':4s} "
          f"{'' if ms is None else f'{ms:8.3f} ms'} {speed}", flush=True)


def err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def shapes() -> dict:
    """W's shapes at the public size (feature 32x16x64x64, 21 keypoints); tiny for the dry run."""
    if DRY:
        return dict(c=4, d=4, h=8, w=8, cc=4, k=5)
    return dict(c=32, d=16, h=64, w=64, cc=4, k=21)


# -- kernels ------------------------------------------------------------------------------------
def section_kernels() -> None:
    s = shapes()
    g = torch.Generator(device="cpu").manual_seed(0)
    rnd = lambda *shape: torch.randn(*shape, generator=g).to(DEV)
    vol = rnd(1, s["c"], s["d"], s["h"], s["w"])
    grid = (torch.rand(1, s["d"], s["h"], s["w"], 3, generator=g) * 2.2 - 1.1).to(DEV)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 1e-2)):
        for align in (False, True):
            e = err(grid_sample3d(vol.to(dtype), grid.to(dtype), align), grid_sample3d_ref(vol, grid, align))
            row("kernels", f"grid_sample3d {str(dtype)[6:]} align={align}", f"max err {e:.2e} < {tol:g}", e < tol)
    v16, g16 = vol.half(), grid.half()
    t = timed(lambda: grid_sample3d(v16, g16))
    tr = timed(lambda: F.grid_sample(v16, g16, mode="bilinear", padding_mode="zeros", align_corners=False))
    row("kernels", "grid_sample3d fp16 W shape vs F.grid_sample", "", True, *t, tr[0],
        f">= {TARGETS['grid_sample_speedup']}x")
    vcl = v16.to(memory_format=torch.channels_last_3d)
    t = timed(lambda: grid_sample3d(vcl, g16))
    row("kernels", "grid_sample3d fp16 channels-last vs F.grid_sample", "", True, *t, tr[0],
        f">= {TARGETS['grid_sample_speedup']}x")

    # fused keypoint-driven warp vs W's unfused sampling path (both halves), fp16
    k = s["k"]
    feat_c = rnd(1, s["cc"], s["d"], s["h"], s["w"]).half()
    kd = (torch.rand(1, k, 3, generator=g) * 1.6 - 0.8).to(DEV)
    ks = kd + 0.1 * rnd(1, k, 3)
    mask = torch.softmax(3 * rnd(1, k + 1, s["d"], s["h"], s["w"]), 1).half()
    e1 = err(motion_input(feat_c, kd, ks), motion_input_ref(feat_c.float(), kd, ks))
    out, dfm = keypoint_warp(v16, mask, kd, ks, return_deformation=True)
    ref, ref_dfm = keypoint_warp_ref(vol, mask.float(), kd, ks)
    e2, e3 = err(out, ref), err(dfm, ref_dfm)
    row("kernels", "motion_input fused fp16", f"max err {e1:.2e} < 1e-2", e1 < 1e-2)
    row("kernels", "keypoint_warp fused fp16", f"max err {max(e2, e3):.2e} < 1e-2", max(e2, e3) < 1e-2)
    fused = lambda: (motion_input(feat_c, kd, ks), keypoint_warp(v16, mask, kd, ks))
    unfused = lambda: (motion_input_ref(feat_c, kd.half(), ks.half()), keypoint_warp_ref(v16, mask, kd.half(), ks.half()))
    t, tr = timed(fused), timed(unfused)
    row("kernels", "fused warp vs W's unfused sampling (fp16)", "", True, *t, tr[0], f">= {TARGETS['fused_warp_speedup']}x")

    # attention: builtin DiT (CFG batch 3, 4 heads, 103 tokens, dim 32) and JoyVASA (2, 8, 110, 64)
    for name, (b, h, n, d) in (("DiT", (3, 4, 103, 32)), ("JoyVASA", (2, 8, 110, 64))):
        if DRY:
            b, h, n, d = 1, 2, 20, 16
        q, kk, vv = (rnd(b, h, n, d).half() for _ in range(3))
        e = err(attention(q, kk, vv), attention_ref(q.float(), kk.float(), vv.float()))
        t = timed(lambda: attention(q, kk, vv))
        tr = timed(lambda: F.scaled_dot_product_attention(q, kk, vv))
        row("kernels", f"attention {name} fp16 vs SDPA", f"max err {e:.2e} < 5e-3", e < 5e-3, *t, tr[0])
        tr2 = timed(lambda: torch.softmax(q @ kk.transpose(-1, -2) * d ** -0.5, -1) @ vv)
        row("kernels", f"attention {name} fp16 vs explicit softmax", "", True, *t, tr2[0])

    # mesh warp on the example portrait's real mesh and grid (512 crop, 4-px cells)
    from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions
    from talkrt.runtime.face import FaceAnalyzer
    from talkrt.runtime.image_io import load_image

    photo = load_image(ROOT / "examples" / "portrait.jpg")
    size = 64 if DRY else 512
    r = BuiltinRenderer(photo, FaceAnalyzer().analyze(photo, 0, "portrait").points,
                        RenderOptions(size=size, grid=size // 4, crop_only=True))
    motion = np.zeros(17, np.float32)
    motion[0] = 0.8  # jaw open
    disp = (r.rig.displace(motion) @ r.lin.T).astype(np.float32)
    idx, wts = (torch.from_numpy(a).to(DEV) for a in mesh_warp_tables(r.grid))
    src = torch.from_numpy(np.ascontiguousarray(r.source)).to(DEV)
    disp_t = torch.from_numpy(disp).to(DEV)
    gshape = r.grid.base.shape[:2]
    out = mesh_warp(src, idx, wts, disp_t, gshape, r.grid.step).cpu().numpy()
    ref = mesh_warp_ref(r.source, r.grid, disp)
    diff = np.abs(out.astype(int) - ref.astype(int))
    ok = diff.max() <= 4 and diff.mean() < 0.15 and (diff > 1).mean() < 0.005  # as tests/kernels
    t = timed(lambda: mesh_warp(src, idx, wts, disp_t, gshape, r.grid.step))
    t0 = time.perf_counter()
    for _ in range(5):
        mesh_warp_ref(r.source, r.grid, disp)
    cpu_ms = (time.perf_counter() - t0) * 200
    row("kernels", f"mesh_warp {size}px vs OpenCV reference (CPU)", f"max {diff.max()} mean {diff.mean():.3f}", ok,
        *t, cpu_ms)
    # the bicubic gather the cpu/h100 profiles render with (cubic = true)
    out = mesh_warp(src, idx, wts, disp_t, gshape, r.grid.step, cubic=True).cpu().numpy()
    diff = np.abs(out.astype(int) - mesh_warp_ref(r.source, r.grid, disp, cubic=True).astype(int))
    ok = diff.mean() < 0.4 and np.percentile(diff, 99) <= 4  # as tests/kernels
    t = timed(lambda: mesh_warp(src, idx, wts, disp_t, gshape, r.grid.step, cubic=True))
    t0 = time.perf_counter()
    for _ in range(5):
        mesh_warp_ref(r.source, r.grid, disp, cubic=True)
    cpu_ms = (time.perf_counter() - t0) * 200
    row("kernels", f"mesh_warp bicubic {size}px vs OpenCV INTER_CUBIC (CPU)",
        f"max {diff.max()} mean {diff.mean():.3f}", ok, *t, cpu_ms)


# -- CUDA C++ kernel ----------------------------------------------------------------------------
class Shape(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("n", "c", "d", "h", "w", "d_out", "h_out", "w_out", "align")]


def section_cuda() -> None:
    if shutil.which("cmake") is None or shutil.which("nvcc") is None:
        row("cuda", "GridSample3D CUDA C++", "skipped: no cmake/nvcc", True)
        return
    arch = "89" if DRY else "".join(map(str, torch.cuda.get_device_capability()))
    build = Path(tempfile.mkdtemp(prefix="talkrt_cmake_"))
    for cmd in (["cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_CUDA_ARCHITECTURES={arch}"],
                ["cmake", "--build", str(build), "-j8", "--target", "talkrt_kernels"]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            row("cuda", "GridSample3D CUDA C++ build", (done.stdout + done.stderr)[-200:].replace("\n", " "), False)
            return
    lib = ctypes.CDLL(str(build / "libtalkrt_kernels.so"))
    lib.talkrtGridSample3D.argtypes = [ctypes.c_void_p] * 3 + [Shape, ctypes.c_int32, ctypes.c_void_p]
    lib.talkrtGridSample3DHost.argtypes = [ctypes.c_void_p] * 3 + [Shape, ctypes.c_int32]
    s = shapes()
    g = torch.Generator().manual_seed(1)
    vol = torch.randn(1, s["c"], s["d"], s["h"], s["w"], generator=g)
    grid = torch.rand(1, s["d"], s["h"], s["w"], 3, generator=g) * 2.2 - 1.1
    shape = Shape(1, s["c"], s["d"], s["h"], s["w"], s["d"], s["h"], s["w"], 0)
    if DRY:  # host loop only
        out = torch.empty_like(vol)
        lib.talkrtGridSample3DHost(vol.data_ptr(), grid.data_ptr(), out.data_ptr(), shape, 0)
        e = err(out, grid_sample3d_ref(vol, grid))
        row("cuda", "GridSample3D host loop fp32", f"max err {e:.2e} < 1e-5", e < 1e-5)
        return
    for dtype, code, tol in ((torch.float32, 0, 1e-5), (torch.float16, 1, 1e-2)):
        v, gr = vol.to(DEV, dtype), grid.to(DEV, dtype)
        out = torch.empty_like(v)
        stream = torch.cuda.current_stream().cuda_stream
        call = lambda: lib.talkrtGridSample3D(v.data_ptr(), gr.data_ptr(), out.data_ptr(), shape, code, stream)
        rc = call()
        sync()
        e = err(out, grid_sample3d_ref(v.float(), gr.float()))
        t = timed(call)
        tr = timed(lambda: F.grid_sample(v, gr, mode="bilinear", padding_mode="zeros", align_corners=False))
        row("cuda", f"GridSample3D CUDA C++ {str(dtype)[6:]} vs F.grid_sample", f"rc {rc}, max err {e:.2e}",
            rc == 0 and e < tol, *t, tr[0])


# -- LivePortrait modules -----------------------------------------------------------------------
def lp_config() -> dict:
    from talkrt.export import liveportrait_import as lpi

    if DRY:
        return json.loads((ROOT.parent / "shared" / "conformance" / "liveportrait" / "tiny_config.json").read_text())
    return lpi.PUBLIC_CONFIG


def lp_modules(config: dict) -> dict:
    from talkrt.export import liveportrait_import as lpi

    torch.manual_seed(0)
    return {"F": lpi.build("appearance_feature_extractor", config).eval(),
            "M": lpi.build("motion_extractor", config).eval(),
            "W": lpi.build("warping_module", config).eval(),
            "G": lpi.build("spade_generator", config).eval(),
            "S": lpi.build_stitching(config)["retarget_shoulder"].eval()}


class WarpDecode(torch.nn.Module):
    """W then G for one frame: what the renderer runs per frame."""

    def __init__(self, w: torch.nn.Module, g: torch.nn.Module):
        super().__init__()
        self.w, self.g = w, g

    def forward(self, feature_3d, kp_driving, kp_source):
        return self.g(self.w(feature_3d, kp_driving, kp_source)[0])


def to_frame(image: torch.Tensor) -> torch.Tensor:
    """[1, 3, H, W] in [0, 1] -> [H, W, 3] uint8 on the device."""
    return (image[0].permute(1, 2, 0).float() * 255 + 0.5).clamp(0, 255).to(torch.uint8)


def section_renderer() -> None:
    import copy

    m = lp_modules(lp_config())
    side = 128 if DRY else 256  # the dry run shrinks W's volume (16x32x32) so the interpreter finishes
    img = torch.rand(1, 3, side, side)
    with torch.no_grad():
        feat = m["F"](img)
        kp = m["M"](img)[-1].view(1, 21, 3)
    kd = kp + 0.02 * torch.randn_like(kp)
    feat, kp, kd = feat.to(DEV), kp.to(DEV), kd.to(DEV)
    fps = lambda ms: 1000.0 / ms
    eager = TorchStage(WarpDecode(copy.deepcopy(m["W"]), copy.deepcopy(m["G"])), "fp32", DEV)
    ref = eager(feat, kd, kp)
    t_eager = timed(lambda: eager(feat, kd, kp), iters=max(2, ITERS // 2))
    row("renderer", "W+G eager fp32 (baseline)", "", True, *t_eager, fps=fps(t_eager[0]))
    variants = [("W+G eager fp16", False, False), ("W+G fp16 fused", True, False),
                ("W+G fp16 CUDA graphs", False, True), ("W+G fp16 fused + CUDA graphs", True, True)]
    for name, fused, graphs in variants:
        if DRY and (graphs or fused):  # no graphs on CPU; the fused W is tested by tests/kernels at tiny shapes
            continue
        w = copy.deepcopy(m["W"]).set_fused(fused, keep_deformation=False)
        stage = TorchStage(WarpDecode(w, copy.deepcopy(m["G"])), LOW, DEV, cuda_graphs=graphs)
        out = stage(feat, kd, kp)
        sync()
        from talkrt.export.precision import psnr_db

        psnr = psnr_db(to_frame(ref).cpu().numpy(), to_frame(out).cpu().numpy())
        t = timed(lambda: stage(feat, kd, kp))
        is_final = fused and graphs
        target = f">= {TARGETS['renderer_fps']} fps, >= {TARGETS['renderer_speedup']}x" if is_final else ""
        row("renderer", name, f"frame PSNR vs fp32 {psnr:.1f} dB", psnr > 30.0, *t, t_eager[0], target,
            fps=fps(t[0]))


# -- end to end ---------------------------------------------------------------------------------
def ops_for_device():
    return HostOps() if DRY else TorchCudaOps(DEV)


def section_builtin() -> None:
    """audio -> motion (ORT on the host, the trained model) -> Triton mesh warp on the GPU -> copy
    out -> mouth/lids painted on the host -> frames in memory, through the frame scheduler."""
    from talkrt.runtime.audio_enc import ArrayAudio
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.avatar import Avatar, AvatarOptions
    from talkrt.runtime.motion import MotionControls
    from talkrt.runtime.profiles import load_settings

    t_start = time.perf_counter()
    audio = load_audio(ROOT / "examples" / "speech.wav")
    if DRY:
        audio = audio[:16000]
    cpu = load_settings("cpu")  # the host-side stages; the warp runs here on the device
    avatar = Avatar.prepare(ROOT / "examples" / "portrait.jpg", AvatarOptions(crop=True, motion="diffusion"), cpu)
    r = avatar.renderer()
    if DRY:  # a 64-pixel crop: the interpreter takes minutes per 512x512 frame
        from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions

        r = BuiltinRenderer(avatar.data["photo"], avatar.data["mesh"], RenderOptions(size=64, grid=16, crop_only=True))
    t_prep = time.perf_counter()
    motion = avatar.family.motion_stream(avatar, MotionControls(), cpu).advance(ArrayAudio(audio))
    if DRY:
        motion = motion[:3]  # the interpreter takes seconds per 512x512 frame
    t_motion = time.perf_counter()
    idx, wts = (torch.from_numpy(a).to(DEV) for a in mesh_warp_tables(r.grid))
    src = torch.from_numpy(np.ascontiguousarray(r.source)).to(DEV)
    gshape, step = r.grid.base.shape[:2], r.grid.step
    h, w = r.source.shape[:2]
    disp_host = [pinned_empty((len(r.points), 2), torch.float32) for _ in range(2)]

    def render(row_, slot, stream):
        disp = (r.rig.displace(row_) @ r.lin.T).astype(np.float32)
        buf = disp_host[slot.index]
        buf.numpy()[...] = disp

        def enqueue():
            d = buf.to(DEV, non_blocking=True)
            mesh_warp(src, idx, wts, d, gshape, step, out=slot.device)
        on_stream(stream, enqueue)
        return (r.points + disp, row_)

    def copy(slot, stream):
        on_stream(stream, lambda: slot.host.copy_(slot.device, non_blocking=True))

    frames = np.empty((2, h, w, 3), np.uint8)

    def finish(slot):
        points, row_ = slot.meta
        r.work = slot.host.numpy()
        r.decode(points, row_)
        frames[slot.index] = r.work  # the frame, in memory
        return slot.index

    buffers = lambda i: (torch.empty((h, w, 3), dtype=torch.uint8, device=DEV), pinned_empty((h, w, 3), torch.uint8))
    sched = FrameScheduler(ops_for_device(), render, copy, finish, buffers, slots=PROFILE["runtime"]["frame_slots"],
                           streams=PROFILE["runtime"]["streams"])
    list(sched.run(motion[:1 if DRY else 3]))  # warm-up: Triton compile
    sync()
    t0 = time.perf_counter()
    n = sum(1 for _ in sched.run(motion))
    sync()
    t_render = time.perf_counter() - t0
    total = (t_motion - t_prep) + t_render
    row("e2e", "builtin 512 crop: audio->motion->render->frames", f"{n} frames, prep {t_prep - t_start:.2f} s",
        True, 1000 * total / n, None, None, f">= {TARGETS['e2e_fps']} fps", fps=n / total,
        render_fps=n / t_render, motion_s=t_motion - t_prep)


def write_lp_folder(folder: Path) -> None:
    """Random weights at the public size (tiny in the dry run) in the layout the export writes for the
    runtime's torch backend: torch/<stage>.pt + config.json, JoyVASA's start features, schedule and
    template, manifest.json."""
    import dataclasses

    from transformers import HubertConfig, HubertModel

    from talkrt.models.joyvasa import AudioEncoder, JoyVASAConfig, JoyVASAMotion

    config = lp_config()
    m = lp_modules(config)
    hub_cfg = HubertConfig(num_hidden_layers=1, hidden_size=64, num_attention_heads=2, intermediate_size=64,
                           conv_dim=(16,) * 7) if DRY else HubertConfig()
    torch.manual_seed(0)
    jcfg = JoyVASAConfig(audio_dim=hub_cfg.hidden_size, n_layers=2 if DRY else 8)
    jv = JoyVASAMotion(jcfg).eval()
    (folder / "torch").mkdir(parents=True, exist_ok=True)
    for name, key in (("appearance", "F"), ("motion_extractor", "M"), ("warp", "W"), ("decode", "G"), ("stitching", "S")):
        torch.save(m[key].state_dict(), folder / "torch" / f"{name}.pt")
    torch.save(jv.denoising_net.state_dict(), folder / "torch" / "motion.pt")
    torch.save(AudioEncoder(HubertModel(hub_cfg).eval(), jv.audio_feature_map).state_dict(),
               folder / "torch" / "audio_enc.pt")
    (folder / "torch" / "config.json").write_text(json.dumps({
        "liveportrait": config, "joyvasa": dataclasses.asdict(jcfg),
        "hubert": {"model_type": "hubert", **hub_cfg.to_diff_dict()}}))
    sched_buffers = {k: v.numpy() for k, v in jv.diffusion_sched.named_buffers()}
    np.savez(folder / "motion_start.npz", start_audio=jv.start_audio_feat.detach().numpy()[0],
             start_motion=jv.start_motion_feat.detach().numpy()[0], null_audio=jv.null_audio_feat.detach().numpy()[0, 0],
             **sched_buffers)
    (folder / "manifest.json").write_text(json.dumps({"files": {}, "joyvasa": {
        "n_motions": jcfg.n_motions, "n_prev_motions": jcfg.n_prev_motions, "motion_feat_dim": jcfg.motion_feat_dim,
        "n_diff_steps": 4 if DRY else jcfg.n_diff_steps}}))
    template = {"mean_exp": [0.0] * 63, "std_exp": [0.02] * 63}
    for key, lo, hi in (("scale", 1.4, 1.6), ("t", -0.02, 0.02), ("pitch", -8, 8), ("yaw", -10, 10), ("roll", -5, 5)):
        n3 = 3 if key == "t" else 1
        template[f"min_{key}"], template[f"max_{key}"] = [lo] * n3, [hi] * n3
    (folder / "motion_template.json").write_text(json.dumps(template))


def _gpu_settings():
    """The h100 profile; the dry run keeps its stages but runs them in fp32 on the CPU, without graphs."""
    import dataclasses

    from talkrt.runtime.profiles import load_settings

    s = load_settings("h100")
    if DRY:
        s = dataclasses.replace(s, cuda_graphs=False, fused_warp=False,
                                precision=tuple((k, "fp32") for k, _ in s.precision))
    return s


def _stream_figures(avatar, audio: np.ndarray, label: str, fps_target: str) -> None:
    """Throughput (audio pushed at once) and first-frame latency (pushed in real time, 20 ms chunks)
    of one stream, through the runtime's Stream, as a product runs it."""
    from bench_stream import run_realtime

    from talkrt.runtime.session import stream_file
    from talkrt.runtime.stream import Stream

    list(stream_file(Stream(avatar, policy="wait"), audio[:8000], 1e9))  # warm-up: graphs, Triton compile
    sync()
    t0 = time.perf_counter()
    n = sum(1 for _ in stream_file(Stream(avatar, policy="wait"), audio, 1e9))
    sync()
    total = time.perf_counter() - t0
    row("e2e", f"{label}: audio->motion->render->frames (runtime Stream)", f"{n} frames", True, 1000 * total / n,
        None, None, fps_target, fps=n / total)
    rt = run_realtime(avatar, audio[: 16000 * (1 if DRY else 4)], 20.0)
    row("stream", f"{label}: first frame, 20 ms chunks in real time",
        f"lag p50 {rt['lag_p50_ms']:.0f} ms, p99 {rt['lag_p99_ms']:.0f} ms", True, rt["first_frame_ms"], None, None,
        "< 170 ms (VASA-1)")


def section_liveportrait() -> None:
    """The liveportrait family through the runtime on the h100 profile: Avatar.prepare (F, M) and a
    Stream (HuBERT, JoyVASA windows, stitching, W -> G on the device with FP16, the fused warp and
    CUDA graphs, paste), with random weights at the public size written in the export's layout."""
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.avatar import Avatar, AvatarOptions
    from talkrt.runtime.liveportrait import family

    folder = Path(tempfile.mkdtemp(prefix="talkrt_lp_"))
    write_lp_folder(folder)
    if DRY:
        family.TORCH_DEVICE = "cpu"
    t0 = time.perf_counter()
    avatar = Avatar.prepare(ROOT / "examples" / "portrait.jpg",
                            AvatarOptions(family="liveportrait", weights=str(folder), crop=DRY), _gpu_settings())
    row("e2e", "liveportrait: Avatar.prepare (face, F, M)", f"{time.perf_counter() - t0:.1f} s", True)
    audio = load_audio(ROOT / "examples" / "speech.wav")
    _stream_figures(avatar, audio[:16000] if DRY else audio, "liveportrait 512", f">= {TARGETS['lp_e2e_fps']} fps")
    shutil.rmtree(folder, ignore_errors=True)


def section_stream() -> None:
    """The builtin family through the runtime on the h100 profile (the warp as Triton kernels)."""
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.avatar import Avatar, AvatarOptions

    if DRY:  # the builtin torch renderer needs CUDA (the interpreter is too slow at 512x512)
        row("stream", "builtin on h100: skipped in the dry run", "", True)
        return
    avatar = Avatar.prepare(ROOT / "examples" / "portrait.jpg", AvatarOptions(crop=True), _gpu_settings())
    _stream_figures(avatar, load_audio(ROOT / "examples" / "speech.wav"), "builtin 512 crop",
                    f">= {TARGETS['e2e_fps']} fps")


SECTIONS = {"kernels": section_kernels, "cuda": section_cuda, "renderer": section_renderer,
            "builtin": section_builtin, "liveportrait": section_liveportrait, "stream": section_stream}


def main() -> None:
    if not DRY and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device (use --cpu-dry-run to exercise the script on a CPU)")
    device = "CPU dry run" if DRY else torch.cuda.get_device_name(0)
    print(f"talkrt GPU check on {device}, commit {commit()}", flush=True)
    t0 = time.perf_counter()
    for name, fn in SECTIONS.items():
        if ARGS.only and name not in ARGS.only:
            continue
        ts = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # one section failing must not hide the others
            traceback.print_exc()
            row(name, "section failed", f"{exc.__class__.__name__}: {str(exc)[:120]}", False)
        print(f"  [{name}: {time.perf_counter() - ts:.0f} s]", flush=True)
    lines = [f"GPU check on {device}, commit {commit()}, torch {torch.__version__}, {time.perf_counter() - t0:.0f} s", "",
             "| section | check | result | ok | median ms | p99 ms | torch/ref ms | speedup | fps | target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "" if v is None else f"{v:.3f}"
    for r in ROWS:
        fps = f"{r['fps']:.1f}" if "fps" in r else ""
        lines.append(f"| {r['section']} | {r['name']} | {r['check']} | {'ok' if r['ok'] else 'FAIL'} | {fmt(r['median_ms'])} "
                     f"| {fmt(r['p99_ms'])} | {fmt(r['ref_ms'])} | {r['speedup']} | {fps} | {r['target']} |")
    table = "\n".join(lines)
    print("\n" + table)
    rec = {"bench": "gpu_check", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": commit(), "device": device,
           "machine": machine(), "versions": versions(), "profile": "h100", "dry_run": DRY, "rows": ROWS}
    if ARGS.out:
        ARGS.out.mkdir(parents=True, exist_ok=True)
        (ARGS.out / "gpu_check.md").write_text(table + "\n")
        (ARGS.out / "gpu_check.json").write_text(json.dumps(rec, indent=1, default=str))
    if not DRY:
        with open(ROOT / "benchmarks" / "results" / "gpu_check.jsonl", "a") as fh:
            fh.write(json.dumps(rec, default=str) + "\n")
    if FAILED:
        sys.exit(f"gpu_check: {len(FAILED)} check(s) failed: {', '.join(FAILED)}")


if __name__ == "__main__":
    main()
