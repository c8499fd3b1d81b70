"""Every Triton kernel compiles for real (not the interpreter) for Jetson Orin (sm_87, PTX ISA 8.5),
RTX 40xx (sm_89) and H100 (sm_90) on a CPU.

Runs the compiler in a subprocess: this session's kernels are in interpreter mode."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from talkrt.kernels.aot import KERNELS


@pytest.mark.parametrize("arch,ptx_version", [(87, 85), (89, None), (90, None)])
def test_kernels_compile_for_target(tmp_path, arch, ptx_version):
    cmd = [sys.executable, "-m", "talkrt.kernels.aot", "--arch", str(arch), "--out", str(tmp_path)]
    if ptx_version:
        cmd += ["--ptx-version", str(ptx_version)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TRITON_INTERPRET": "0"})
    assert done.returncode == 0, done.stderr[-1000:]
    meta = json.loads((tmp_path / "kernels.json").read_text())
    assert meta["arch"] == arch and set(meta["kernels"]) == set(KERNELS)
    for k in KERNELS:
        ptx = (tmp_path / f"{k}.ptx").read_text()
        assert f".target sm_{arch}" in ptx and meta["kernels"][k]["entry"] in ptx
        if ptx_version:
            assert ".version 8.5" in ptx
        assert (tmp_path / f"{k}.cubin").read_bytes()[:4] == b"\x7fELF"  # a real cubin
    assert meta["kernels"]["grid_sample3d"]["params"] >= 3 + 18 and meta["kernels"]["grid_sample3d"]["shared"] == 0


def test_unknown_kernel_is_named():
    from talkrt.kernels.aot import _spec

    with pytest.raises(ValueError, match="no AOT spec"):
        _spec("nope", "fp16")
