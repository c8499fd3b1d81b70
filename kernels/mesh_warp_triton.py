"""Triton mesh warp for the builtin family: the GPU twin of kernels/mesh_warp.py's reference.

Three launches per frame, none of which materialises a full-resolution map:
- `_coarse_flow_kernel`: per grid cell, the barycentric gather of control-point displacements
  (3 ids + 3 weights per cell) -> forward flow in grid units. Moves 32 B per cell.
- `_invert_kernel`: per cell, Newton's method on x + d(x) = y with the flow and its np.gradient
  derivatives sampled bilinearly (replicate border), steps clamped to 2 cells -> backward offset.
- `_remap_kernel`: per output pixel, the bilinear upsample of that offset (cv2.resize geometry),
  the bilinear (2x2) or bicubic (4x4, Keys a = -0.75 as cv2.INTER_CUBIC) gather of the uint8 RGB
  source with reflected borders (cv2.BORDER_REFLECT) and the mouth layer composited with its alpha.
  Moves 3 B in (x4 or x16 taps, cached), 3 B out, 3 B + 4 B of mouth layer per pixel; the 512x512
  frame's full map (2 MB fp32) never exists. Bicubic keeps the photo's detail where the face moves
  (the CPU renderer's default); it costs 16 taps instead of 4.

The reference (backward_map + cv2.remap) quantizes sampling positions to 1/32 pixel as OpenCV
does; these kernels interpolate in float, so results agree to within about one 8-bit level.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from talkrt.kernels.mesh_warp import WarpGrid, mesh_warp_ref  # noqa: F401 (mesh_warp_ref: the reference)


def mesh_warp_tables(wg: WarpGrid) -> tuple[np.ndarray, np.ndarray]:
    """The sparse barycentric weights as dense per-cell tables: vertex ids [G, 3] int32 and
    weights [G, 3] float32 (cells outside the triangulation have zero weights)."""
    csr = wg.weights.tocsr()
    n = csr.shape[0]
    idx, w = np.zeros((n, 3), np.int32), np.zeros((n, 3), np.float32)
    counts = np.diff(csr.indptr)
    if counts.max(initial=0) > 3:
        raise ValueError("a grid cell has more than 3 barycentric weights")
    for k in range(3):
        has = counts > k
        pos = csr.indptr[:-1][has] + k
        idx[has, k], w[has, k] = csr.indices[pos], csr.data[pos]
    return idx, w


@triton.jit
def _coarse_flow_kernel(idx_ptr, w_ptr, disp_ptr, fwd_ptr, n_cells, inv_step, BLOCK: tl.constexpr):
    """fwd[cell] = sum_k w[cell, k] * disp[idx[cell, k]] / step   (grid units)"""
    c = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = c < n_cells
    fx = tl.zeros([BLOCK], tl.float32)
    fy = tl.zeros([BLOCK], tl.float32)
    for k in tl.static_range(3):
        v = tl.load(idx_ptr + c * 3 + k, mask=ok, other=0)
        wk = tl.load(w_ptr + c * 3 + k, mask=ok, other=0.0)
        fx += wk * tl.load(disp_ptr + v * 2, mask=ok, other=0.0)
        fy += wk * tl.load(disp_ptr + v * 2 + 1, mask=ok, other=0.0)
    tl.store(fwd_ptr + c * 2, fx * inv_step, mask=ok)
    tl.store(fwd_ptr + c * 2 + 1, fy * inv_step, mask=ok)

@triton.jit
def _fwd(fwd_ptr, i, j, gw, ch, ok):
    return tl.load(fwd_ptr + (i * gw + j) * 2 + ch, mask=ok, other=0.0)

@triton.jit
def _field_at(fwd_ptr, i, j, gh, gw, ok):
    """(dx, dy, d/dx of dx, dy; d/dy of dx, dy) at integer cell (i, j), np.gradient edges."""
    jl = tl.maximum(j - 1, 0)
    jr = tl.minimum(j + 1, gw - 1)
    iu = tl.maximum(i - 1, 0)
    idn = tl.minimum(i + 1, gh - 1)
    sx = (jr - jl).to(tl.float32)
    sy = (idn - iu).to(tl.float32)
    fx = _fwd(fwd_ptr, i, j, gw, 0, ok)
    fy = _fwd(fwd_ptr, i, j, gw, 1, ok)
    gxx = (_fwd(fwd_ptr, i, jr, gw, 0, ok) - _fwd(fwd_ptr, i, jl, gw, 0, ok)) / sx
    gxy = (_fwd(fwd_ptr, i, jr, gw, 1, ok) - _fwd(fwd_ptr, i, jl, gw, 1, ok)) / sx
    gyx = (_fwd(fwd_ptr, idn, j, gw, 0, ok) - _fwd(fwd_ptr, iu, j, gw, 0, ok)) / sy
    gyy = (_fwd(fwd_ptr, idn, j, gw, 1, ok) - _fwd(fwd_ptr, iu, j, gw, 1, ok)) / sy
    return fx, fy, gxx, gxy, gyx, gyy

@triton.jit
def _cell(x, n):
    """Bilinear corners along one axis of n cells with replicated borders: (i0, i1, fraction)."""
    xc = tl.minimum(tl.maximum(x, 0.0), n - 1.0)
    i0 = tl.minimum(tl.floor(xc).to(tl.int32), n - 1)
    return i0, tl.minimum(i0 + 1, n - 1), xc - i0.to(tl.float32)


@triton.jit
def _invert_kernel(fwd_ptr, off_ptr, gh, gw, step, ITERS: tl.constexpr, BLOCK: tl.constexpr):
    """Newton solve of x + d(x) = y per cell (bilinear field, replicate border, 2-cell step
    clamp), written as the pixel offset (x - y) * step."""
    c = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = c < gh * gw
    by = (c // gw).to(tl.float32)
    bx = (c % gw).to(tl.float32)
    x = bx - tl.load(fwd_ptr + c * 2, mask=ok, other=0.0)
    y = by - tl.load(fwd_ptr + c * 2 + 1, mask=ok, other=0.0)
    for _ in tl.static_range(ITERS):
        x0, x1, ax = _cell(x, gw)
        y0, y1, ay = _cell(y, gh)
        f00 = _field_at(fwd_ptr, y0, x0, gh, gw, ok)
        f01 = _field_at(fwd_ptr, y0, x1, gh, gw, ok)
        f10 = _field_at(fwd_ptr, y1, x0, gh, gw, ok)
        f11 = _field_at(fwd_ptr, y1, x1, gh, gw, ok)
        w00 = (1 - ax) * (1 - ay)
        w01 = ax * (1 - ay)
        w10 = (1 - ax) * ay
        w11 = ax * ay
        dx = w00 * f00[0] + w01 * f01[0] + w10 * f10[0] + w11 * f11[0]
        dy = w00 * f00[1] + w01 * f01[1] + w10 * f10[1] + w11 * f11[1]
        a = 1.0 + w00 * f00[2] + w01 * f01[2] + w10 * f10[2] + w11 * f11[2]
        cc = w00 * f00[3] + w01 * f01[3] + w10 * f10[3] + w11 * f11[3]
        b = w00 * f00[4] + w01 * f01[4] + w10 * f10[4] + w11 * f11[4]
        d = 1.0 + w00 * f00[5] + w01 * f01[5] + w10 * f10[5] + w11 * f11[5]
        rx = x + dx - bx
        ry = y + dy - by
        det = a * d - b * cc
        det = tl.where(tl.abs(det) < 0.05, tl.where(det < 0, -0.05, 0.05), det)
        sx = tl.minimum(tl.maximum((d * rx - b * ry) / det, -2.0), 2.0)
        sy = tl.minimum(tl.maximum((-cc * rx + a * ry) / det, -2.0), 2.0)
        x = x - sx
        y = y - sy
    tl.store(off_ptr + c * 2, (x - bx) * step, mask=ok)
    tl.store(off_ptr + c * 2 + 1, (y - by) * step, mask=ok)


@triton.jit
def _reflect(i, n):
    i = tl.where(i < 0, -i - 1, i)
    i = tl.where(i >= n, 2 * n - i - 1, i)
    return tl.minimum(tl.maximum(i, 0), n - 1)


@triton.jit
def _cubic_weights(t):
    """Keys cubic convolution weights (a = -0.75, OpenCV's) of the taps at -1, 0, 1, 2 for fraction t."""
    a = -0.75
    u = t + 1.0
    w0 = ((a * u - 5.0 * a) * u + 8.0 * a) * u - 4.0 * a
    w1 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    v = 1.0 - t
    w2 = ((a + 2.0) * v - (a + 3.0)) * v * v + 1.0
    return w0, w1, w2, 1.0 - w0 - w1 - w2


@triton.jit
def _remap_kernel(src_ptr, off_ptr, out_ptr, mouth_ptr, alpha_ptr, H, W, gh, gw, inv_step,
                  HAS_MOUTH: tl.constexpr, CUBIC: tl.constexpr, BLOCK: tl.constexpr):
    """Per pixel: bilinear upsample of the coarse offset (cv2.resize geometry), bilinear or bicubic
    sample of the uint8 RGB source with reflected borders, optional mouth layer composite."""
    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = p < H * W
    py = p // W
    px = p % W
    # coarse cell coordinates of this pixel: (pixel + 0.5) / step - 0.5, clamped (replicate)
    cx0, cx1, ax = _cell((px.to(tl.float32) + 0.5) * inv_step - 0.5, gw)
    cy0, cy1, ay = _cell((py.to(tl.float32) + 0.5) * inv_step - 0.5, gh)
    ox = ((1 - ax) * (1 - ay) * tl.load(off_ptr + (cy0 * gw + cx0) * 2, mask=ok, other=0.0)
          + ax * (1 - ay) * tl.load(off_ptr + (cy0 * gw + cx1) * 2, mask=ok, other=0.0)
          + (1 - ax) * ay * tl.load(off_ptr + (cy1 * gw + cx0) * 2, mask=ok, other=0.0)
          + ax * ay * tl.load(off_ptr + (cy1 * gw + cx1) * 2, mask=ok, other=0.0))
    oy = ((1 - ax) * (1 - ay) * tl.load(off_ptr + (cy0 * gw + cx0) * 2 + 1, mask=ok, other=0.0)
          + ax * (1 - ay) * tl.load(off_ptr + (cy0 * gw + cx1) * 2 + 1, mask=ok, other=0.0)
          + (1 - ax) * ay * tl.load(off_ptr + (cy1 * gw + cx0) * 2 + 1, mask=ok, other=0.0)
          + ax * ay * tl.load(off_ptr + (cy1 * gw + cx1) * 2 + 1, mask=ok, other=0.0))
    sx = px.to(tl.float32) + ox
    sy = py.to(tl.float32) + oy
    x0f = tl.floor(sx)
    y0f = tl.floor(sy)
    fx = sx - x0f
    fy = sy - y0f
    x0 = x0f.to(tl.int32)
    y0 = y0f.to(tl.int32)
    if HAS_MOUTH:
        alpha = tl.load(alpha_ptr + p, mask=ok, other=0.0)
    if CUBIC:
        wx0, wx1, wx2, wx3 = _cubic_weights(fx)
        wy0, wy1, wy2, wy3 = _cubic_weights(fy)
        xs0 = _reflect(x0 - 1, W)
        xs1 = _reflect(x0, W)
        xs2 = _reflect(x0 + 1, W)
        xs3 = _reflect(x0 + 2, W)
    else:
        xa = _reflect(x0, W)
        xb = _reflect(x0 + 1, W)
        ya = _reflect(y0, H)
        yb = _reflect(y0 + 1, H)
    for ch in tl.static_range(3):
        if CUBIC:
            v = tl.zeros([BLOCK], tl.float32)
            for k in tl.static_range(4):
                row = _reflect(y0 - 1 + k, H) * W
                wy = tl.where(k == 0, wy0, tl.where(k == 1, wy1, tl.where(k == 2, wy2, wy3)))
                line = (wx0 * tl.load(src_ptr + (row + xs0) * 3 + ch, mask=ok, other=0).to(tl.float32)
                        + wx1 * tl.load(src_ptr + (row + xs1) * 3 + ch, mask=ok, other=0).to(tl.float32)
                        + wx2 * tl.load(src_ptr + (row + xs2) * 3 + ch, mask=ok, other=0).to(tl.float32)
                        + wx3 * tl.load(src_ptr + (row + xs3) * 3 + ch, mask=ok, other=0).to(tl.float32))
                v += wy * line
        else:
            v = ((1 - fx) * (1 - fy) * tl.load(src_ptr + (ya * W + xa) * 3 + ch, mask=ok, other=0).to(tl.float32)
                 + fx * (1 - fy) * tl.load(src_ptr + (ya * W + xb) * 3 + ch, mask=ok, other=0).to(tl.float32)
                 + (1 - fx) * fy * tl.load(src_ptr + (yb * W + xa) * 3 + ch, mask=ok, other=0).to(tl.float32)
                 + fx * fy * tl.load(src_ptr + (yb * W + xb) * 3 + ch, mask=ok, other=0).to(tl.float32))
        if HAS_MOUTH:
            m = tl.load(mouth_ptr + p * 3 + ch, mask=ok, other=0).to(tl.float32)
            v = v + alpha * (m - v)
        v = tl.minimum(tl.maximum(tl.floor(v + 0.5), 0.0), 255.0)
        tl.store(out_ptr + p * 3 + ch, v.to(tl.uint8), mask=ok)


def mesh_warp(image: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor, disp: torch.Tensor,
              grid_shape: tuple[int, int], step: int, mouth: torch.Tensor | None = None,
              alpha: torch.Tensor | None = None, iterations: int = 3, block: int = 256,
              out: torch.Tensor | None = None, cubic: bool = False) -> torch.Tensor:
    """Triton mesh warp. image [H, W, 3] uint8, idx/weights [G, 3] (mesh_warp_tables), disp [N, 2]
    float32 pixels, all torch tensors on one device; optional mouth [H, W, 3] uint8 + alpha [H, W]
    float32 composited over the warped image; `cubic` samples bicubically (else bilinearly).
    Returns `out` (a new [H, W, 3] uint8 tensor if not given)."""
    gh, gw = grid_shape
    h, w = image.shape[:2]
    if image.dtype != torch.uint8 or image.shape[2] != 3 or idx.shape[0] != gh * gw:
        raise ValueError(f"mesh_warp wants [H, W, 3] uint8 and {gh}x{gw} cell tables, got {tuple(image.shape)} "
                         f"{image.dtype} and {idx.shape[0]} cells")
    fwd = torch.empty((gh * gw, 2), dtype=torch.float32, device=image.device)
    off = torch.empty_like(fwd)
    out = torch.empty_like(image) if out is None else out
    n_cells = gh * gw
    _coarse_flow_kernel[(triton.cdiv(n_cells, block),)](idx, weights, disp.contiguous(), fwd, n_cells, 1.0 / step, BLOCK=block)
    _invert_kernel[(triton.cdiv(n_cells, block),)](fwd, off, gh, gw, float(step), ITERS=iterations, BLOCK=block)
    has_mouth = mouth is not None
    _remap_kernel[(triton.cdiv(h * w, block),)](image, off, out, mouth if has_mouth else image,
                                                alpha if has_mouth else fwd, h, w, gh, gw, 1.0 / step,
                                                HAS_MOUTH=has_mouth, CUBIC=bool(cubic), BLOCK=block)
    return out
