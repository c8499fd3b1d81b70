"""LivePortrait's keypoint math in numpy (the runtime's copy of models/lp_stitching.py's):
bins -> degrees, rotation matrices, Eq. 2, relative driving and the stitching correction."""
from __future__ import annotations

import numpy as np


def bins_to_degrees(logits: np.ndarray) -> np.ndarray:
    """[B, 66] logits -> [B] degrees (softmax expectation * 3 - 97.5)."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return (p * np.arange(logits.shape[-1])).sum(-1) * 3 - 97.5


def rotation_matrix(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """[B, 3, 3] (Rz Ry Rx)^T from degrees, for row-vector keypoints."""
    x, y, z = (np.deg2rad(np.asarray(a, np.float64)).reshape(-1) for a in (pitch, yaw, roll))
    out = np.empty((len(x), 3, 3))
    for i in range(len(x)):
        cx, sx, cy, sy, cz, sz = np.cos(x[i]), np.sin(x[i]), np.cos(y[i]), np.sin(y[i]), np.cos(z[i]), np.sin(z[i])
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        out[i] = (rz @ ry @ rx).T
    return out.astype(np.float32)


def transform_keypoints(kp: np.ndarray, rot: np.ndarray, exp: np.ndarray, scale: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Eq. 2: s * (kp @ R + exp) + [tx, ty, 0]; kp, exp [B, 63] or [B, 21, 3] -> [B, 21, 3]."""
    b = kp.shape[0]
    x = (kp.reshape(b, -1, 3) @ rot + exp.reshape(b, -1, 3)) * scale.reshape(b, 1, 1)
    x[..., :2] += t.reshape(b, 1, 3)[..., :2]
    return x.astype(np.float32)


def apply_stitching(delta: np.ndarray, kp_driving: np.ndarray) -> np.ndarray:
    """x_d + delta[:63] per keypoint, and delta[63:65] added to every keypoint's x, y."""
    b = kp_driving.shape[0]
    out = kp_driving.reshape(b, -1, 3) + delta[:, :-2].reshape(b, -1, 3)
    out[..., :2] += delta[:, None, -2:]
    return out.astype(np.float32)
