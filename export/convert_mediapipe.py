"""Make talkrt's shipped face models from MediaPipe 0.10.21's Apache-2.0 TFLite files.

Development-time tool, run once by a maintainer (needs `pip install -e .[dev]` and network access
to PyPI for the wheel, or a wheel given with --wheel):

    python export/convert_mediapipe.py [--wheel mediapipe-0.10.21-...whl]

1. takes the three TFLite models out of the mediapipe 0.10.21 wheel (the last release that ships them),
2. converts each to ONNX with export/tflite_to_onnx.py into runtime/models/,
3. runs the ORIGINAL TFLite models (ai-edge-litert's interpreter) on inputs cut from
   examples/portrait.jpg and records their outputs in tests/fixtures/mediapipe_reference.npz,
   which tests/runtime/test_face_models.py compares the ONNX models against.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "export"))
from tflite_to_onnx import convert  # noqa: E402  (a sibling script, importable without install)

MODELS = {
    "face_detection_short_range": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "face_landmark": "mediapipe/modules/face_landmark/face_landmark.tflite",
    "iris_landmark": "mediapipe/modules/iris_landmark/iris_landmark.tflite",
}


def fetch_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
                    "mediapipe==0.10.21", "-d", str(dest)], check=True)
    return next(dest.glob("mediapipe-0.10.21-*.whl"))


def reference_inputs() -> dict[str, np.ndarray]:
    """uint8 model inputs cut from the example portrait the way the runtime cuts them."""
    from PIL import Image

    from talkrt.runtime import face

    rgb = np.asarray(Image.open(ROOT / "examples" / "portrait.jpg").convert("RGB"))
    analyzer = face.FaceAnalyzer()
    det = analyzer.detect(rgb)[0]
    mesh = analyzer.mesh(rgb, det)
    side = max(rgb.shape[:2])
    canvas = np.zeros((face.DETECT_SIZE,) * 2 + (3,), np.uint8)
    import cv2

    canvas[:] = cv2.resize(rgb, (face.DETECT_SIZE, round(rgb.shape[0] * face.DETECT_SIZE / side)))[:face.DETECT_SIZE]
    centre, size, angle = analyzer._roi_from_points(mesh.points[:468].astype(np.float64))
    mesh_crop, _ = face._crop_rotated(rgb, centre, size, angle, face.MESH_SIZE)
    a, b = mesh.points[face.RIGHT_EYE_CORNERS[0], :2], mesh.points[face.RIGHT_EYE_CORNERS[1], :2]
    eye_crop, _ = face._crop_rotated(rgb, (a + b) / 2, float(np.linalg.norm(b - a) * 2.3),
                                     float(np.arctan2(b[1] - a[1], b[0] - a[0])), face.IRIS_SIZE)
    return {"face_detection_short_range": canvas, "face_landmark": mesh_crop, "iris_landmark": eye_crop}


def normalise(name: str, u8: np.ndarray) -> np.ndarray:
    x = u8.astype(np.float32)
    x = x / 127.5 - 1.0 if name == "face_detection_short_range" else x / 255.0
    return x[None]


def main() -> None:
    ap = argparse.ArgumentParser(description="convert MediaPipe face models to ONNX and record references")
    ap.add_argument("--wheel", type=Path, help="mediapipe-0.10.21 wheel (downloaded when omitted)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = args.wheel or fetch_wheel(tmp)
        with zipfile.ZipFile(wheel) as zf:
            for name, member in MODELS.items():
                (tmp / f"{name}.tflite").write_bytes(zf.read(member))
        for name in MODELS:
            onnx.save(convert(tmp / f"{name}.tflite"), ROOT / "runtime" / "models" / f"{name}.onnx")
            print(f"wrote runtime/models/{name}.onnx")

        from ai_edge_litert.interpreter import Interpreter

        record: dict[str, np.ndarray] = {}
        for name, u8 in reference_inputs().items():
            interp = Interpreter(model_path=str(tmp / f"{name}.tflite"))
            interp.allocate_tensors()
            interp.set_tensor(interp.get_input_details()[0]["index"], normalise(name, u8))
            interp.invoke()
            record[f"{name}/input_u8"] = u8
            for d in interp.get_output_details():
                record[f"{name}/{d['name']}"] = interp.get_tensor(d["index"]).copy()
        out = ROOT / "tests" / "fixtures" / "mediapipe_reference.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out, **record)
        print(f"wrote {out.relative_to(ROOT)} ({len(record)} arrays)")


if __name__ == "__main__":
    main()
