"""Triton mesh warp against the OpenCV reference (backward_map + cv2.remap) on fresh random meshes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from talkrt.kernels.mesh_warp import build_warp_grid
from talkrt.kernels.mesh_warp_triton import mesh_warp, mesh_warp_ref, mesh_warp_tables

SIZE = 64


def _signed_areas(p, tri):
    a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def _case(rng, sigma=2.0):
    """A random mesh and displacement that folds no triangle (a fold has no unique inverse, and
    there the reference's 1/32-pixel sampling can pick a different branch)."""
    k = np.linspace(0, SIZE - 1, 5)
    border = np.unique(np.concatenate([np.stack([k, 0 * k], 1), np.stack([k, 0 * k + SIZE - 1], 1),
                                       np.stack([0 * k, k], 1), np.stack([0 * k + SIZE - 1, k], 1)]), axis=0)
    while True:
        pts = np.concatenate([border, rng.uniform(8, SIZE - 8, (30, 2))]).astype(np.float32)
        wg = build_warp_grid(pts, SIZE, step=4)
        disp = np.zeros_like(pts)
        disp[len(border):] = rng.normal(0, sigma, (30, 2))
        before, after = _signed_areas(pts, wg.triangles), _signed_areas(pts + disp, wg.triangles)
        if np.all(np.sign(before) == np.sign(after)) and np.all(np.abs(after) > 0.25 * np.abs(before)):
            break
    image = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), (5, 5), 0)
    return wg, disp, image


def _run(wg, disp, image, device, cubic=False, **kw):
    idx, w = mesh_warp_tables(wg)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)
    kw = {k: t(v) for k, v in kw.items()}
    return mesh_warp(t(image), t(idx), t(w), t(disp), wg.base.shape[:2], wg.step, cubic=cubic, **kw).cpu().numpy()


def test_matches_reference(device):
    rng = np.random.default_rng()
    wg, disp, image = _case(rng)
    out = _run(wg, disp, image, device)
    diff = np.abs(out.astype(int) - mesh_warp_ref(image, wg, disp).astype(int))
    # OpenCV samples at 1/32-pixel positions, the kernel in float: a level apart, rarely more
    assert diff.max() <= 4 and diff.mean() < 0.15 and (diff > 1).mean() < 0.005


def test_cubic_matches_reference_and_keeps_detail(device):
    rng = np.random.default_rng()
    wg, disp, _ = _case(rng)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)  # full of fine detail
    image = cv2.GaussianBlur(image, (3, 3), 0.6)
    out = _run(wg, disp, image, device, cubic=True)
    ref = mesh_warp_ref(image, wg, disp, cubic=True)
    diff = np.abs(out.astype(int) - ref.astype(int))
    # OpenCV's bicubic also samples at 1/32-pixel positions; its taps add up a little more of that
    assert diff.mean() < 0.4 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F).var()
    assert lap(out) > 1.1 * lap(_run(wg, disp, image, device))  # sharper than bilinear
    assert np.array_equal(_run(wg, 0 * disp, image, device, cubic=True), image)  # integer taps: the source


def test_zero_displacement_is_identity(device):
    rng = np.random.default_rng()
    wg, disp, image = _case(rng)
    assert np.array_equal(_run(wg, 0 * disp, image, device), image)


def test_mouth_composite(device):
    rng = np.random.default_rng()
    wg, disp, image = _case(rng)
    mouth = rng.integers(0, 256, image.shape, dtype=np.uint8)
    alpha = rng.uniform(0, 1, image.shape[:2]).astype(np.float32)
    out = _run(wg, disp, image, device, mouth=mouth, alpha=alpha)
    warped = _run(wg, disp, image, device).astype(np.float32)
    expect = np.clip(np.floor(warped + alpha[..., None] * (mouth - warped) + 0.5), 0, 255)
    # the composite happens before rounding in the kernel: within one level of compositing the rounded warp
    assert np.abs(out.astype(int) - expect.astype(int)).max() <= 1


def test_tables_carry_the_weights():
    rng = np.random.default_rng()
    wg, disp, _ = _case(rng)
    idx, w = mesh_warp_tables(wg)
    dense = np.zeros(wg.weights.shape, np.float32)
    np.add.at(dense, (np.repeat(np.arange(len(idx)), 3), idx.ravel()), w.ravel())
    assert np.allclose(dense, wg.weights.toarray(), atol=1e-6)


def test_bad_image_is_refused(device):
    rng = np.random.default_rng()
    wg, disp, image = _case(rng)
    with pytest.raises(ValueError, match="uint8"):
        _run(wg, disp, image.astype(np.float32), device)
