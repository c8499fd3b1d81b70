"""The shipped ONNX face models against outputs recorded from the original TFLite models."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkrt.runtime.engine import open_engine

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mediapipe_reference.npz"
INPUT_NAMES = {"face_detection_short_range": "input", "face_landmark": "input_1", "iris_landmark": "input_1"}


def _normalise(name: str, u8: np.ndarray) -> np.ndarray:
    x = u8.astype(np.float32)
    return (x / 127.5 - 1.0 if name == "face_detection_short_range" else x / 255.0)[None]


@pytest.mark.parametrize("name", sorted(INPUT_NAMES))
def test_onnx_matches_tflite_reference(name):
    ref = np.load(FIXTURE)
    engine = open_engine(f"{name}.onnx")
    out = engine.run({INPUT_NAMES[name]: _normalise(name, ref[f"{name}/input_u8"])})
    outputs = [k.split("/", 1)[1] for k in ref.files if k.startswith(name + "/") and not k.endswith("input_u8")]
    assert outputs, "fixture holds no outputs"
    for key in outputs:
        expect = ref[f"{name}/{key}"]
        got = out[key]
        assert got.shape == expect.shape
        # fp32 re-association only: far below a hundredth of a pixel on a 192-px crop
        np.testing.assert_allclose(got, expect, atol=2e-3 * max(1.0, np.abs(expect).max() / 100), rtol=0)


def test_mesh_landmarks_match_tflite_reference():
    """Landmarks in crop pixels: ONNX within 0.01 px of the original model."""
    ref = np.load(FIXTURE)
    engine = open_engine("face_landmark.onnx")
    out = engine.run({"input_1": _normalise("face_landmark", ref["face_landmark/input_u8"])})
    got = out["conv2d_21"].reshape(468, 3)
    expect = ref["face_landmark/conv2d_21"].reshape(468, 3)
    assert np.abs(got[:, :2] - expect[:, :2]).max() < 0.01


def test_detection_on_astronaut_matches_mediapipe(analyzer, portrait_rgb):
    # MediaPipe 0.10.21's own face_detection on skimage's astronaut gives box x,y,w,h = 178,83,95,95
    # with score 0.922 (shared/specs/offline-components.md, section 1.1)
    faces = analyzer.detect(portrait_rgb)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert abs(x0 - 178) < 4 and abs(y0 - 83) < 4 and abs((x1 - x0) - 95) < 4 and abs((y1 - y0) - 95) < 4
    assert abs(faces[0].score - 0.922) < 0.02


def test_mesh_sits_on_the_face(portrait_mesh):
    pts = portrait_mesh.points
    assert pts.shape == (478, 3)
    # irises inside their eyes' corner spans; chin below mouth below nose below eyes
    for iris, (a, b) in ((468, (33, 133)), (473, (362, 263))):
        lo, hi = sorted((pts[a, 0], pts[b, 0]))
        assert lo < pts[iris, 0] < hi
    assert pts[159, 1] < pts[1, 1] < pts[13, 1] < pts[152, 1]
