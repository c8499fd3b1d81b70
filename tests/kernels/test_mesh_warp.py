"""mesh_warp_ref against exact warps on fresh random inputs."""
from __future__ import annotations

import cv2
import numpy as np

from talkrt.kernels.mesh_warp import backward_map, build_warp_grid, mesh_warp_ref

SIZE = 128


def _points(rng, n=60):
    k = np.linspace(0, SIZE - 1, 5)
    border = np.unique(np.concatenate([np.stack([k, 0 * k], 1), np.stack([k, 0 * k + SIZE - 1], 1),
                                       np.stack([0 * k, k], 1), np.stack([0 * k + SIZE - 1, k], 1)]), axis=0)
    return np.concatenate([border, rng.uniform(10, SIZE - 10, (n, 2))]).astype(np.float32)


def test_affine_displacement_is_inverted_exactly():
    """Displacements from one affine map make a piecewise-linear flow that is that affine map:
    the backward map must be its exact inverse (up to the Newton tolerance)."""
    rng = np.random.default_rng(11)
    pts = _points(rng)
    a = np.eye(2) + rng.uniform(-0.08, 0.08, (2, 2))
    t = rng.uniform(-3, 3, 2)
    centre = SIZE / 2
    disp = ((pts - centre) @ a.T + centre + t) - pts
    wg = build_warp_grid(pts, SIZE, step=4)
    m = backward_map(wg, disp.astype(np.float32))
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    dest = np.stack([xs, ys], -1)
    expect = (dest - centre - t) @ np.linalg.inv(a).T + centre
    inner = slice(16, SIZE - 16)  # away from the border, where the map is clamped
    assert np.abs(m[inner, inner] - expect[inner, inner]).max() < 0.05


def test_zero_displacement_is_identity():
    rng = np.random.default_rng(5)
    pts = _points(rng)
    img = (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    wg = build_warp_grid(pts, SIZE, step=4)
    out = mesh_warp_ref(img, wg, np.zeros_like(pts))
    assert np.array_equal(out, img)


def test_local_bump_moves_content_and_leaves_rest():
    """A single interior control point moved right: content around it follows, far pixels do not."""
    rng = np.random.default_rng(8)
    pts = _points(rng, n=0)
    pts = np.concatenate([pts, [[64.0, 64.0], [40, 40], [88, 40], [40, 88], [88, 88]]]).astype(np.float32)
    disp = np.zeros_like(pts)
    disp[-5] = [6.0, 0.0]
    img = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(img, (64, 64), 3, 255, -1)
    wg = build_warp_grid(pts, SIZE, step=2)
    out = mesh_warp_ref(img, wg, disp)
    ys, xs = np.nonzero(out > 127)
    assert 4.5 < xs.mean() - 64 < 6.5 and abs(ys.mean() - 64) < 1.0  # 6 px at the point, less around it
    assert np.array_equal(out[:, :20], img[:, :20])


def test_newton_beats_a_single_subtraction_on_strong_stretch():
    """Where the flow stretches (jaw opening), x = y - d(y) is wrong; the Newton map lands on the
    source point that really moves to y."""
    rng = np.random.default_rng(2)
    pts = _points(rng, n=0)
    inner = np.array([[64, 60], [64, 68], [48, 64], [80, 64]], np.float32)
    pts = np.concatenate([pts, inner])
    disp = np.zeros_like(pts)
    disp[-3] = [0, 12]  # the lower point drops by 12 px
    wg = build_warp_grid(pts, SIZE, step=2)
    m = backward_map(wg, disp, iterations=4)
    fwd_at = lambda p: (wg.weights @ disp).reshape(64, 64, 2)[int(round((p[1] + 0.5) / 2 - 0.5)), int(round((p[0] + 0.5) / 2 - 0.5))]
    y = np.array([64.0, 75.0])
    x = m[75, 64]
    assert np.linalg.norm(x + fwd_at(x) - y) < 1.5
