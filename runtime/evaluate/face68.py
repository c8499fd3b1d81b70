"""dlib's 68-point landmarks and 128-d face embedding, for `talkrt eval` (independent of the face
mesh talkrt renders with). Models come from the `face-recognition-models` package."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkrt.runtime.errors import InputError, OptionError

DETECT_WIDTH = 640  # detection runs on a copy at most this wide (HOG finds faces >= ~80 px)


def _models_dir() -> Path:
    # located without importing the package (its __init__ needs pkg_resources)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise OptionError("eval", "needs the eval extra: pip install 'talkrt[eval]' (face-recognition-models is missing)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@dataclass
class Face:
    landmarks: np.ndarray  # [68, 2] float, pixels
    box: tuple[int, int, int, int]  # detector box x0, y0, x1, y1 (or the tracked one)
    detected: bool  # False when the detector missed and the previous box was used


class Face68:
    """Detector + 68-point shape predictor + embedder; `find` for a photo, `track` for frames."""

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise OptionError("eval", "needs the eval extra: pip install 'talkrt[eval]' (dlib is missing)") from None
        base = _models_dir()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shaper = dlib.shape_predictor(str(base / "shape_predictor_68_face_landmarks.dat"))
        self.embedder = dlib.face_recognition_model_v1(str(base / "dlib_face_recognition_resnet_model_v1.dat"))
        self._box = None

    def _detect(self, rgb: np.ndarray, upsample: int) -> list[tuple[int, int, int, int]]:
        import cv2

        h, w = rgb.shape[:2]
        s = min(1.0, DETECT_WIDTH / w)
        small = cv2.resize(rgb, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
        boxes = self.detector(np.ascontiguousarray(small), upsample)
        return [(int(b.left() / s), int(b.top() / s), int(b.right() / s), int(b.bottom() / s)) for b in boxes]

    def _shape(self, rgb: np.ndarray, box):
        rect = self._dlib.rectangle(*box)
        return self.shaper(rgb, rect)

    def find(self, rgb: np.ndarray, what: str) -> Face:
        """The largest face of a photo; InputError when there is none. Does not touch the tracker."""
        boxes = self._detect(rgb, 1)
        if not boxes:
            raise InputError(what, "dlib finds no face in it")
        box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        return Face(self._points(self._shape(rgb, box)), box, True)

    def start_tracking(self, face: Face) -> None:
        """`track` follows this face from now on."""
        self._box = face.box

    def track(self, rgb: np.ndarray) -> Face:
        """The face nearest the previous one (from `start_tracking` at first); where the detector
        misses it, the previous box is reused so that every frame has landmarks."""
        prev = self._box
        cx, cy, size = (prev[0] + prev[2]) / 2, (prev[1] + prev[3]) / 2, prev[2] - prev[0]
        near = [b for b in self._detect(rgb, 0) if abs((b[0] + b[2]) / 2 - cx) + abs((b[1] + b[3]) / 2 - cy) < size]
        box = near[0] if near else prev
        self._box = box
        return Face(self._points(self._shape(rgb, box)), box, bool(near))

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return np.array(self.embedder.compute_face_descriptor(rgb, self._shape(rgb, face.box)))

    @staticmethod
    def _points(shape) -> np.ndarray:
        return np.array([[shape.part(k).x, shape.part(k).y] for k in range(68)], np.float64)
