"""The `face` stage: BlazeFace detection, then the 468-point face mesh and the iris model.

All three run as ONNX converted from MediaPipe's Apache-2.0 TFLite models (see MODELS.md and
export/tflite_to_onnx.py). Output: 478 points (468 mesh + 5 per iris) in image pixels, z in the
same pixel scale as x (relative depth, smaller = nearer the camera).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkrt.runtime.engine import Engine, open_engine
from talkrt.runtime.errors import InputError

DETECT_SIZE = 128  # BlazeFace short-range input, [-1, 1]
MESH_SIZE = 192  # face mesh input, [0, 1]
IRIS_SIZE = 64  # iris input, [0, 1]
MIN_FACE_PX = 48  # smaller faces cannot be animated usefully
SCORE_THRESHOLD = 0.5
TILE_SCORE_THRESHOLD = 0.8
# eye corners in the 468 mesh (subject's right eye = image left) used to place the iris crops
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)


@dataclass(frozen=True)
class FaceBox:
    box: np.ndarray  # [4] x0, y0, x1, y1 in image pixels
    keypoints: np.ndarray  # [6, 2] right eye, left eye, nose, mouth, right ear, left ear
    score: float

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


@dataclass(frozen=True)
class FaceMesh:
    points: np.ndarray  # [478, 3] float32 image pixels
    presence: float  # face-present probability from the mesh model


def _anchors() -> np.ndarray:
    """BlazeFace short-range SSD anchors: 16x16x2 + 8x8x6 = 896 centres in [0, 1]."""
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0 = np.maximum(a[0], b[:, 0]); y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2]); y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])
    return inter / (area(a) + area(b) - inter + 1e-9)


def _contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    """Does `outer` contain the centre of `inner`?"""
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return bool(outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3])


def _weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray) -> list[FaceBox]:
    """MediaPipe-style blending: overlapping detections are averaged, weighted by score."""
    faces = []
    order = np.argsort(-scores)
    used = np.zeros(len(order), bool)
    for i in order:
        if used[i]:
            continue
        group = (~used) & (_iou(boxes[i], boxes) > 0.3)
        used |= group
        wts = scores[group] / scores[group].sum()
        faces.append(FaceBox((boxes[group] * wts[:, None]).sum(0).astype(np.float32),
                             (kps[group] * wts[:, None, None]).sum(0).astype(np.float32), float(scores[i])))
    return faces


def _crop_rotated(rgb: np.ndarray, centre, size: float, angle: float, out: int, flip: bool = False):
    """Crop a square of side `size` centred at `centre`, rotated by `angle` (rad), to out x out.

    Returns the crop and the 2x3 matrix mapping crop pixels back to image pixels.
    """
    c, s = np.cos(angle), np.sin(angle)
    scale = size / out
    # crop -> image: p = R * scale * (q - out/2) + centre
    m = np.array([[c * scale, -s * scale, 0.0], [s * scale, c * scale, 0.0]])
    if flip:
        m[:, 0] *= -1
    m[:, 2] = np.asarray(centre) - m[:, :2] @ np.array([out / 2, out / 2])
    crop = cv2.warpAffine(rgb, m, (out, out), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop, m


class FaceAnalyzer:
    """Finds faces and fits the dense mesh. Engines are opened once and reused."""

    def __init__(self, backend: str = "ort", threads: int = 0):
        self.detector: Engine = open_engine("face_detection_short_range.onnx", backend, threads)
        self.mesher: Engine = open_engine("face_landmark.onnx", backend, threads)
        self.iris: Engine = open_engine("iris_landmark.onnx", backend, threads)
        self.anchors = _anchors()

    # -- detection -------------------------------------------------------------------------
    def _detect_square(self, rgb: np.ndarray, x0: int, y0: int, side: int):
        """Raw detections in one square window (letterboxed when it overhangs the image)."""
        h, w = rgb.shape[:2]
        window = rgb[y0:y0 + side, x0:x0 + side]
        scale = DETECT_SIZE / side
        small = cv2.resize(window, (max(1, round(window.shape[1] * scale)), max(1, round(window.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
        canvas = np.zeros((DETECT_SIZE, DETECT_SIZE, 3), np.float32)
        canvas[:small.shape[0], :small.shape[1]] = small[:DETECT_SIZE, :DETECT_SIZE] / 127.5 - 1.0
        res = self.detector.run({"input": canvas[None]})
        raw = res["regressors"][0]  # [896, 16]
        scores = 1 / (1 + np.exp(-np.clip(res["classificators"][0, :, 0], -80, 80).astype(np.float64)))
        keep = scores >= SCORE_THRESHOLD
        raw, scores, anc = raw[keep], scores[keep], self.anchors[keep]
        centre = raw[:, 0:2] / DETECT_SIZE + anc
        half = raw[:, 2:4] / DETECT_SIZE / 2
        to_px = lambda v: v * side + np.array([x0, y0])
        boxes = np.concatenate([to_px(centre - half), to_px(centre + half)], 1)
        kps = to_px(raw[:, 4:16].reshape(-1, 6, 2) / DETECT_SIZE + anc[:, None])
        return boxes, kps, scores

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """All faces, largest first.

        BlazeFace short-range sees faces that fill a good part of its 128x128 input, so the image
        is searched at three window sizes (whole image, its shorter side, half that) with
        half-window strides. Within a window detections are blended (weighted NMS); across windows
        a face found in a larger window wins over its views in smaller ones.
        """
        h, w = rgb.shape[:2]
        faces: list[FaceBox] = []
        sides = [max(h, w)] + [s for s in (min(h, w), min(h, w) // 2) if 2 * DETECT_SIZE <= s < max(h, w)]
        for level, side in enumerate(dict.fromkeys(sides)):
            starts = lambda n: sorted(set(range(0, n - side + 1, side // 2)) | {n - side}) if side < n else [0]
            for y0 in starts(h):
                for x0 in starts(w):
                    boxes, kps, scores = self._detect_square(rgb, x0, y0, side)
                    # windows after the first see more clutter up close: ask for more confidence
                    keep = scores >= (SCORE_THRESHOLD if level == 0 else TILE_SCORE_THRESHOLD)
                    for face in _weighted_nms(boxes[keep], kps[keep], scores[keep]):
                        # a face already found in a larger window wins over its partial views
                        if all(_iou(f.box, face.box[None])[0] < 0.1 and not _contains(f.box, face.box)
                               and not _contains(face.box, f.box) for f in faces):
                            faces.append(face)
        return sorted(faces, key=lambda f: -f.area)

    # -- mesh --------------------------------------------------------------------------------
    def _mesh_pass(self, rgb, centre, size, angle):
        crop, m = _crop_rotated(rgb, centre, size, angle, MESH_SIZE)
        res = self.mesher.run({"input_1": (crop.astype(np.float32) / 255.0)[None]})
        pts = res["conv2d_21"].reshape(468, 3).astype(np.float64)
        img_xy = pts[:, :2] @ m[:, :2].T + m[:, 2]
        z = pts[:, 2] * size / MESH_SIZE
        presence = float(1 / (1 + np.exp(-res["conv2d_31"].reshape(-1)[0])))
        return np.concatenate([img_xy, z[:, None]], 1), presence

    def _roi_from_points(self, pts):
        """Square rotated ROI around mesh points, as MediaPipe derives it (x1.5, eye-line angle)."""
        r, l = pts[RIGHT_EYE_CORNERS[0], :2], pts[LEFT_EYE_CORNERS[1], :2]
        angle = np.arctan2(l[1] - r[1], l[0] - r[0])
        c, s = np.cos(-angle), np.sin(-angle)
        rot = pts[:, :2] @ np.array([[c, s], [-s, c]])
        lo, hi = rot.min(0), rot.max(0)
        centre_rot = (lo + hi) / 2
        centre = centre_rot @ np.array([[c, -s], [s, c]])
        return centre, float((hi - lo).max() * 1.5), float(angle)

    def _iris(self, rgb, pts, corners, flip):
        a, b = pts[corners[0], :2], pts[corners[1], :2]
        centre = (a + b) / 2
        angle = np.arctan2(b[1] - a[1], b[0] - a[0]) if not flip else np.arctan2(a[1] - b[1], a[0] - b[0])
        size = float(np.linalg.norm(b - a) * 2.3)
        crop, m = _crop_rotated(rgb, centre, size, angle, IRIS_SIZE, flip=flip)
        res = self.iris.run({"input_1": (crop.astype(np.float32) / 255.0)[None]})
        iris = res["output_iris"].reshape(5, 3).astype(np.float64)
        xy = iris[:, :2] @ m[:, :2].T + m[:, 2]
        z = iris[:, 2] * size / IRIS_SIZE
        return np.concatenate([xy, z[:, None]], 1)

    def mesh(self, rgb: np.ndarray, face: FaceBox) -> FaceMesh:
        """Fit the mesh in two passes (detection ROI, then the ROI the first mesh gives) + irises."""
        r_eye, l_eye = face.keypoints[0], face.keypoints[1]
        angle = float(np.arctan2(l_eye[1] - r_eye[1], l_eye[0] - r_eye[0]))
        centre = (face.box[:2] + face.box[2:]) / 2
        size = float((face.box[2:] - face.box[:2]).max() * 1.5)
        pts, _ = self._mesh_pass(rgb, centre, size, angle)
        pts, presence = self._mesh_pass(rgb, *self._roi_from_points(pts))
        iris_r = self._iris(rgb, pts, RIGHT_EYE_CORNERS, flip=False)
        iris_l = self._iris(rgb, pts, LEFT_EYE_CORNERS, flip=True)
        allpts = np.concatenate([pts, iris_r, iris_l]).astype(np.float32)
        return FaceMesh(allpts, presence)

    def analyze(self, rgb: np.ndarray, face_index: int = 0, name: str = "portrait") -> FaceMesh:
        """The mesh of the `face_index`-th largest face, or an InputError saying why not."""
        faces = self.detect(rgb)
        if not faces:
            raise InputError(name, "no face found in the image")
        if face_index >= len(faces):
            raise InputError(name, f"--face-index {face_index} asked for, but only {len(faces)} face(s) found")
        face = faces[face_index]
        width = float(face.box[2] - face.box[0])
        if width < MIN_FACE_PX:
            raise InputError(name, f"face is too small to animate ({width:.0f} px wide, need {MIN_FACE_PX})")
        mesh = self.mesh(rgb, face)
        if mesh.presence < 0.5:
            raise InputError(name, "face mesh could not be fitted (face occluded or not frontal enough)")
        return mesh
