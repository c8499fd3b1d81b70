"""The CUDA C++ grid sample: CMake builds it, and its per-voxel code (shared by the kernel and a host
loop) is checked against torch's F.grid_sample. The GPU launch itself is checked by the GPU check."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from talkrt.kernels.grid_sample3d import grid_sample3d_ref

ROOT = Path(__file__).resolve().parents[2]


class Shape(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in ("n", "c", "d", "h", "w", "d_out", "h_out", "w_out", "align")]


@pytest.fixture(scope="module")
def cuda_lib(tmp_path_factory):
    if shutil.which("nvcc") is None or shutil.which("cmake") is None:
        pytest.skip("nvcc/cmake not on this machine")
    build = tmp_path_factory.mktemp("cmake")
    for cmd in (["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_CUDA_ARCHITECTURES=87;89"],
                ["cmake", "--build", str(build), "-j2", "--target", "talkrt_kernels"]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lib = ctypes.CDLL(str(build / "libtalkrt_kernels.so"))
    lib.talkrtGridSample3DHost.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, Shape, ctypes.c_int32]
    lib.talkrtGridSample3DHost.restype = ctypes.c_int
    return lib


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype,code,tol", [(np.float32, 0, 2e-6), (np.float16, 1, 3e-3)])
def test_host_loop_matches_torch(cuda_lib, align_corners, dtype, code, tol):
    rng = np.random.default_rng()
    vol = rng.standard_normal((2, 3, 4, 5, 6)).astype(dtype)
    grid = rng.uniform(-1.3, 1.3, (2, 3, 4, 5, 3)).astype(dtype)
    out = np.empty((2, 3, 3, 4, 5), dtype)
    shape = Shape(2, 3, 4, 5, 6, 3, 4, 5, int(align_corners))
    assert cuda_lib.talkrtGridSample3DHost(vol.ctypes.data, grid.ctypes.data, out.ctypes.data, shape, code) == 0
    ref = grid_sample3d_ref(torch.from_numpy(vol.astype(np.float32)), torch.from_numpy(grid.astype(np.float32)),
                            align_corners).numpy()
    assert np.abs(out.astype(np.float32) - ref).max() < tol


def test_unknown_dtype_is_refused(cuda_lib):
    buf = np.zeros(8, np.float32)
    assert cuda_lib.talkrtGridSample3DHost(buf.ctypes.data, buf.ctypes.data, buf.ctypes.data,
                                           Shape(1, 1, 1, 1, 1, 1, 1, 1, 0), 7) == -1


def test_plugin_compiles_against_the_interface_stub():
    """The IPluginV3 plugin's C++ is well-formed and overrides what the interfaces declare (a stub
    of TensorRT's declarations in tests/fixtures; the real headers are not installable here)."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++")
    import os

    candidates = [Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "include", Path("/usr/local/cuda/include"),
                  Path(shutil.which("nvcc") or "/nonexistent").resolve().parents[1] / "include"]
    cuda_include = next((c for c in candidates if (c / "cuda_runtime_api.h").is_file()), None)
    if cuda_include is None:
        pytest.skip("no CUDA headers")
    done = subprocess.run([cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                           f"-I{ROOT / 'tests' / 'fixtures' / 'trt_stub'}", f"-I{cuda_include}",
                           f"-I{ROOT / 'kernels' / 'cuda'}", str(ROOT / "kernels" / "cuda" / "grid_sample3d_plugin.cpp")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
