"""The builtin renderer on the `torch` backend: the per-frame mesh warp runs as talkrt's Triton
kernels on the GPU (kernels/mesh_warp_triton.py), the mouth interior and lids are still painted on
the host, on the copied-out frame. Everything else (rig, crop, paste) is the CPU renderer's.

Per frame: control-point displacements (a few KB) go up, the warped RGB frame (768 KB at 512x512)
comes down; the source image and the barycentric tables stay on the device.
"""
from __future__ import annotations

import numpy as np
import torch

from talkrt.kernels.mesh_warp_triton import mesh_warp, mesh_warp_tables
from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions
from talkrt.runtime.errors import TalkrtError


class TorchBuiltinRenderer(BuiltinRenderer):
    def __init__(self, rgb: np.ndarray, mesh: np.ndarray, options: RenderOptions = RenderOptions(),
                 device: str = "cuda"):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise TalkrtError("backend torch", "no CUDA device is visible (use the cpu profile)")
        super().__init__(rgb, mesh, options)
        self.device = torch.device(device)
        idx, w = mesh_warp_tables(self.grid)
        self._idx, self._w = torch.from_numpy(idx).to(self.device), torch.from_numpy(w).to(self.device)
        self._src = torch.from_numpy(np.ascontiguousarray(self.source)).to(self.device)
        self._out = torch.empty_like(self._src)
        pin = self.device.type == "cuda"
        self._disp = torch.empty((len(self.points), 2), dtype=torch.float32, pin_memory=pin)
        self._host = torch.empty(self._src.shape, dtype=torch.uint8, pin_memory=pin)
        self.work = self._host.numpy()  # decode paints here; paste copies from here
        if options.crop_only:
            self.canvas = self.work

    def warp(self, motion: np.ndarray) -> np.ndarray:
        disp = self.rig.displace(motion) @ self.lin.T
        self._disp.numpy()[...] = disp
        mesh_warp(self._src, self._idx, self._w, self._disp.to(self.device, non_blocking=True),
                  self.grid.base.shape[:2], self.grid.step, out=self._out, cubic=self.options.cubic)
        self._host.copy_(self._out)  # the frame leaves the device: the one sync per frame
        self._frame_disp = disp  # decode's photo mouth near rest warps with it (on the host)
        return self.points + disp
