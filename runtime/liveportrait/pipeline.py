"""The liveportrait family's geometry: LivePortrait's crop, F/M's input, relative driving and the
paste back into the photo. Used by runtime/liveportrait/family.py (the stages behind the family
protocol) and by benchmarks/gpu_check.py.

face (our mesh) -> LivePortrait crop (512, scale 2.3, vy -0.125) -> appearance: F and M once ->
audio_enc (HuBERT + JoyVASA map) -> motion (JoyVASA) -> relative driving -> stitching -> warp (W)
-> decode (G) -> paste (feathered, inverse affine). Needs the folder that
talkrt.export.export_liveportrait writes.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.liveportrait import keypoints as kpm

CROP_SIZE = 512
CROP_SCALE = 2.3
CROP_VY = -0.125
MOTION_FPS = 25.0
STAGE_FILES = ("appearance", "motion_extractor", "warp", "decode", "stitching", "audio_enc", "motion")


def lp_crop(rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """2x3 image->crop transform framing the face as LivePortrait's cropper does: landmarks from the
    brows down, rotated upright by the eye line, square of 2.3x their extent, shifted up by 0.125."""
    pts = mesh[:468, :2].astype(np.float64)
    r_eye, l_eye = pts[[33, 133]].mean(0), pts[[362, 263]].mean(0)
    angle = np.arctan2(l_eye[1] - r_eye[1], l_eye[0] - r_eye[0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    up = pts @ rot.T
    brow = up[[70, 63, 105, 66, 107, 300, 293, 334, 296, 336], 1].mean()
    face = up[up[:, 1] >= brow]
    lo, hi = face.min(0), face.max(0)
    size = float((hi - lo).max()) * CROP_SCALE
    centre = (lo + hi) / 2 + np.array([0.0, CROP_VY * size])
    scale = CROP_SIZE / size
    m = np.zeros((2, 3))
    m[:, :2] = rot * scale
    m[:, 2] = CROP_SIZE / 2 - scale * centre
    return m


def _paste_mask(size: int) -> np.ndarray:
    r = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) / (0.1 * size)
    ramp = np.clip(r, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return np.minimum(ramp[:, None], ramp[None, :])


def source_image(photo: np.ndarray, affine: np.ndarray, side: int = 256) -> np.ndarray:
    """F's and M's input: the crop, resized to side x side, [1, 3, side, side] float32 in [0, 1]."""
    crop = cv2.warpAffine(photo, affine, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    x = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    return x.transpose(2, 0, 1)[None] / 255.0


class Paster:
    """Puts a generated 512 face back into the photo: inverse affine into the face's bounding box,
    blended through the warped feather mask."""

    def __init__(self, photo: np.ndarray, affine: np.ndarray):
        h, w = photo.shape[:2]
        inv = cv2.invertAffineTransform(affine)
        corners = np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float) @ inv[:, :2].T + inv[:, 2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [w, h])
        self.roi = (int(x0), int(y0), int(x1), int(y1))
        self.to_roi = affine.copy()
        self.to_roi[:, 2] += affine[:, :2] @ np.array([x0, y0])
        self.mask = cv2.warpAffine(_paste_mask(CROP_SIZE), self.to_roi, (x1 - x0, y1 - y0),
                                   flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)[..., None]
        self.base = photo[y0:y1, x0:x1].astype(np.float32)

    def paste(self, canvas: np.ndarray, face: np.ndarray) -> None:
        x0, y0, x1, y1 = self.roi
        back = cv2.warpAffine(face, self.to_roi, (x1 - x0, y1 - y0), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        canvas[y0:y1, x0:x1] = np.clip(self.base + self.mask * (back - self.base) + 0.5, 0, 255).astype(np.uint8)


def relative_driving(src: dict, r_s: np.ndarray, d: dict, first: dict, r_rel_i: np.ndarray, i: int) -> np.ndarray:
    """LivePortrait's relative driving, before stitching: the source keypoints moved by frame i's
    change against the clip's first frame (`first`: exp, scale, t of that frame, one row each);
    r_rel_i = R_d_i @ R_d_0^T."""
    r_new = r_rel_i @ r_s
    exp = src["exp"] + (d["exp"][i:i + 1] - first["exp"])
    scale = src["scale"] * (d["scale"][i:i + 1] / first["scale"])
    t = src["t"] + (d["t"][i:i + 1] - first["t"])
    t[:, 2] = 0
    return kpm.transform_keypoints(src["kp"], r_new, exp, scale, t)


def check_folder(folder: Path, backend: str = "ort") -> None:
    """The stage files a backend needs: ONNX files, or the torch backend's state dicts."""
    if backend == "torch":
        missing = [f"torch/{n}.pt" for n in STAGE_FILES if not (folder / "torch" / f"{n}.pt").is_file()]
    else:
        missing = [f"{n}.onnx" for n in STAGE_FILES if not (folder / f"{n}.onnx").is_file()]
    if missing:
        raise TalkrtError(folder, f"exported model folder lacks {', '.join(missing)}")
