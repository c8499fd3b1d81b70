"""Ahead-of-time compilation of talkrt's Triton kernels to PTX/cubin for a given GPU, on any machine
(no GPU needed): what a Jetson (where Triton does not run, specs/toolchain.md section 4.4) or a
TensorRT plugin loads instead of JIT-compiling.

    python -m talkrt.kernels.aot --arch 87 --ptx-version 85 --out build/kernels_sm87

JetPack 6's CUDA 12.6 driver cannot JIT PTX newer than ISA 8.5, hence `--ptx-version`. Triton >= 3.6
adds two hidden trailing pointer parameters to every kernel entry (global and profile scratch);
`params` in the written metadata counts them, and a launcher must pass them (as null pointers for
these kernels, which use no scratch: metadata `global_scratch_size` 0).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

I32 = "i32"


@dataclass(frozen=True)
class Compiled:
    name: str
    ptx: str
    cubin: bytes
    num_warps: int
    shared: int
    params: int  # .param entries of the PTX entry point, hidden ones included
    global_scratch_size: int


def _spec(kernel: str, dtype: str) -> tuple:
    """(jit function, signature, constexprs) of each AOT-built kernel."""
    from talkrt.kernels.grid_sample3d import _grid_sample3d_kernel
    from talkrt.kernels.keypoint_warp import _keypoint_warp_kernel, _motion_input_kernel

    p = f"*{dtype}"
    if kernel == "grid_sample3d":
        ints = ["C", "D", "H", "W", "Do", "Ho", "Wo", "n_vox", "s_n", "s_c", "s_d", "s_h", "s_w",
                "o_n", "o_c", "o_d", "o_h", "o_w"]
        sig = {"src_ptr": p, "grid_ptr": p, "out_ptr": p, **{n: I32 for n in ints}}
        return _grid_sample3d_kernel, sig, {"ALIGN": False, "BLOCK_V": 64, "BLOCK_C": 32}
    if kernel == "keypoint_warp":
        ints = ["C", "Ds", "Hs", "Ws", "D", "H", "W", "K", "n_sp", "s_n", "s_c", "s_d", "s_h", "s_w"]
        sig = {"src_ptr": p, "mask_ptr": p, "kpd_ptr": "*fp32", "kps_ptr": "*fp32", "out_ptr": p, "def_ptr": p,
               **{n: I32 for n in ints}}
        return _keypoint_warp_kernel, sig, {"WRITE_DEF": False, "BLOCK_V": 64, "BLOCK_C": 32}
    if kernel == "motion_input":
        ints = ["C", "D", "H", "W", "K", "n_sp"]
        sig = {"src_ptr": p, "kpd_ptr": "*fp32", "kps_ptr": "*fp32", "out_ptr": p, **{n: I32 for n in ints},
               "inv_var": "fp32", **{n: I32 for n in ["s_n", "s_c", "s_d", "s_h", "s_w"]}}
        return _motion_input_kernel, sig, {"BLOCK_V": 128, "BLOCK_C": 4}
    if kernel == "attention":
        from talkrt.kernels.attention import _attention_kernel

        ints = ["H", "Lq", "Lk", "D"]
        strides = [f"s{t}_{a}" for t in "qkvo" for a in "bhl"]
        sig = {"q_ptr": p, "k_ptr": p, "v_ptr": p, "o_ptr": p, "mask_ptr": "*u8", **{n: I32 for n in ints},
               "scale": "fp32", **{n: I32 for n in strides}}
        return _attention_kernel, sig, {"HAS_MASK": True, "IEEE": dtype == "fp32", "BLOCK_M": 32, "BLOCK_N": 32,
                                        "BLOCK_D": 64}
    from talkrt.kernels import mesh_warp_triton as mw

    if kernel == "mesh_coarse_flow":
        sig = {"idx_ptr": "*i32", "w_ptr": "*fp32", "disp_ptr": "*fp32", "fwd_ptr": "*fp32", "n_cells": I32,
               "inv_step": "fp32"}
        return mw._coarse_flow_kernel, sig, {"BLOCK": 256}
    if kernel == "mesh_invert":
        sig = {"fwd_ptr": "*fp32", "off_ptr": "*fp32", "gh": I32, "gw": I32, "step": "fp32"}
        return mw._invert_kernel, sig, {"ITERS": 3, "BLOCK": 256}
    if kernel in ("mesh_remap", "mesh_remap_cubic"):
        sig = {"src_ptr": "*u8", "off_ptr": "*fp32", "out_ptr": "*u8", "mouth_ptr": "*u8", "alpha_ptr": "*fp32",
               "H": I32, "W": I32, "gh": I32, "gw": I32, "inv_step": "fp32"}
        return mw._remap_kernel, sig, {"HAS_MOUTH": True, "CUBIC": kernel.endswith("cubic"), "BLOCK": 256}
    raise ValueError(f"no AOT spec for kernel {kernel!r} ({', '.join(KERNELS)})")


KERNELS = ("grid_sample3d", "keypoint_warp", "motion_input", "attention", "mesh_coarse_flow", "mesh_invert",
           "mesh_remap", "mesh_remap_cubic")


def compile_kernel(kernel: str, arch: int, dtype: str = "fp16", ptx_version: int | None = None) -> Compiled:
    fn, sig, constexprs = _spec(kernel, dtype)
    sig = {**sig, **{k: "constexpr" for k in constexprs}}
    options = {"ptx_version": ptx_version} if ptx_version else {}
    k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs), target=GPUTarget("cuda", arch, 32),
                       options=options)
    ptx = k.asm["ptx"]
    entry = ptx[ptx.index(".entry"):]
    params = entry[: entry.index(")")].count(".param")
    return Compiled(k.metadata.name, ptx, k.asm["cubin"], k.metadata.num_warps, k.metadata.shared, params,
                    int(getattr(k.metadata, "global_scratch_size", 0) or 0))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", type=int, required=True, help="compute capability, e.g. 87 (Orin), 89, 90")
    ap.add_argument("--ptx-version", type=int, help="PTX ISA, e.g. 85 for CUDA 12.6 drivers")
    ap.add_argument("--dtype", default="fp16", choices=("fp16", "fp32"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {}
    for kernel in KERNELS:
        c = compile_kernel(kernel, args.arch, args.dtype, args.ptx_version)
        (args.out / f"{kernel}.ptx").write_text(c.ptx)
        (args.out / f"{kernel}.cubin").write_bytes(c.cubin)
        meta[kernel] = {"entry": c.name, "num_warps": c.num_warps, "shared": c.shared, "params": c.params,
                        "global_scratch_size": c.global_scratch_size}
    (args.out / "kernels.json").write_text(json.dumps({"arch": args.arch, "dtype": args.dtype,
                                                       "triton": triton.__version__, "kernels": meta}, indent=2))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
