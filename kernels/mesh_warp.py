"""Mesh warp: a dense image warp driven by the displacement of a triangulated control mesh.

What it fuses (for the GPU version): barycentric interpolation of per-vertex displacements into a
coarse flow grid, Newton inversion of that forward flow into a backward sampling map, its
upsampling and the bilinear gather of the image. Bytes moved per 512x512 RGB frame: the image in
(768 KB) and out (768 KB); the flow grid (128x128x2 fp32, 128 KB) stays on chip in a fused kernel.

This file holds the numpy/OpenCV reference, `mesh_warp_ref`, used by the CPU runtime; the Triton
kernels are in kernels/mesh_warp_triton.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay


@dataclass(frozen=True)
class WarpGrid:
    """Precomputed interpolation from control-point displacements to a coarse flow grid."""

    width: int  # output size in pixels
    height: int
    step: int  # pixels per grid cell
    weights: sparse.csr_matrix  # [gh*gw, N] barycentric weights of grid-cell centres
    triangles: np.ndarray  # [M, 3] control-point indices
    base: np.ndarray  # [gh, gw, 2] cell coordinates, grid units
    full: np.ndarray  # [height, width, 2] pixel coordinates


def build_warp_grid(points: np.ndarray, width: int, height: int | None = None, step: int = 4) -> WarpGrid:
    """Triangulate `points` ([N, 2] pixels) and tabulate weights on a grid of `step`-pixel cells
    covering width x height. Outside the triangulation the displacement is zero."""
    height = width if height is None else height
    gw, gh = max(2, int(np.ceil(width / step))), max(2, int(np.ceil(height / step)))
    tri = Delaunay(points.astype(np.float64))
    # cell centres in pixel-index coordinates (pixel j is centred on j)
    centres = (np.stack(np.meshgrid(np.arange(gw), np.arange(gh)), -1).reshape(-1, 2) + 0.5) * step - 0.5
    simplex = tri.find_simplex(centres)
    inside = simplex >= 0
    rows = np.nonzero(inside)[0]
    s = simplex[inside]
    t = tri.transform[s]  # [P, 3, 2]
    b = np.einsum("pij,pj->pi", t[:, :2], centres[inside] - t[:, 2])
    bary = np.concatenate([b, 1 - b.sum(1, keepdims=True)], 1)  # [P, 3]
    cols = tri.simplices[s]
    w = sparse.csr_matrix((bary.ravel(), (np.repeat(rows, 3), cols.ravel())), shape=(gw * gh, len(points)))
    mesh = lambda nx, ny: np.stack(np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32)), -1)
    return WarpGrid(width=width, height=height, step=int(step), weights=w.astype(np.float32),
                    triangles=tri.simplices.copy(), base=mesh(gw, gh), full=mesh(width, height))


def backward_map(wg: WarpGrid, disp: np.ndarray, iterations: int = 3) -> np.ndarray:
    """[size, size, 2] float32 source coordinates for each output pixel.

    The forward flow d(x) (a source point x moves to x + d(x)) is interpolated on the coarse grid;
    the backward map solves x + d(x) = y for x by Newton's method, starting from x = y - d(y),
    with the Jacobian I + grad d sampled where x currently is. Steps are clamped to 2 cells so
    that folded or collapsed regions (lips pressed shut) settle instead of oscillating.
    """
    gh, gw = wg.base.shape[:2]
    step = wg.step
    fwd = (wg.weights @ disp.astype(np.float32)).reshape(gh, gw, 2) / step  # grid units
    gy, gx = np.gradient(fwd, axis=(0, 1))  # [g, g, 2] each: d(dx, dy)/dy and /dx
    field = np.concatenate([fwd, gx, gy], 2).astype(np.float32)  # [g, g, 6]
    base = wg.base
    x = base - fwd
    for _ in range(iterations):
        f = cv2.remap(field, x[..., 0], x[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        r = x + f[..., 0:2] - base
        a, c = 1.0 + f[..., 2], f[..., 3]  # d(x + dx)/dx, d(y + dy)/dx
        b, d = f[..., 4], 1.0 + f[..., 5]  # d(x + dx)/dy, d(y + dy)/dy
        det = a * d - b * c
        det = np.where(np.abs(det) < 0.05, np.copysign(0.05, det), det)
        sx = (d * r[..., 0] - b * r[..., 1]) / det
        sy = (-c * r[..., 0] + a * r[..., 1]) / det
        step_vec = np.clip(np.stack([sx, sy], -1), -2.0, 2.0)
        x = x - step_vec
    # grid -> pixels: cell i is centred on pixel (i + 0.5) * step - 0.5, as cv2.resize assumes
    up = cv2.resize((x - base) * step, (gw * wg.step, gh * wg.step), interpolation=cv2.INTER_LINEAR)[:wg.height, :wg.width]
    return wg.full + up


def mesh_warp_ref(image: np.ndarray, wg: WarpGrid, disp: np.ndarray, iterations: int = 3,
                  cubic: bool = False) -> np.ndarray:
    """Warp `image` ([height, width, C]) so that control point i moves by disp[i] ([N, 2] pixels),
    sampling bilinearly or (`cubic`) bicubically."""
    m = backward_map(wg, disp, iterations)
    return cv2.remap(image, m[..., 0], m[..., 1], cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)

