"""Precision transforms per stage: FP16 through ModelOpt AutoCast, INT8 through ModelOpt Q/DQ with
calibration data from real renders, and the accuracy verdict that decides what ships.

TensorRT 11 has no FP16/INT8 builder flags (specs/toolchain.md section 1.4-1.5): precision lives
in the ONNX. GridSample stays FP32 here (op_types_to_exclude) and is rewritten to the plugin
afterwards (export/trt_rewrite.py), since ModelOpt runs the graph on ONNX Runtime, which has no
kernel for the plugin. Accuracy is measured with ONNX Runtime on CPU: the stage's outputs against
FP32, and the PSNR of the rendered 8-bit frames that pass through it (benchmarks/precision_report.py).
A reduced precision ships for a stage only when that PSNR meets the profile's [accuracy] bound.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KEEP_FP32_OPS = ("GridSample",)


def autocast_fp16(src: Path, dst: Path, keep_ops: tuple[str, ...] = KEEP_FP32_OPS,
                  keep_nodes: tuple[str, ...] = ()) -> Path:
    """Mixed FP16 ONNX (FP32 inputs/outputs kept, so callers feed what they fed before)."""
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision

    logging.getLogger("modelopt").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / Path(src).name
        shutil.copy2(src, work)
        model = convert_to_mixed_precision(onnx_path=str(work), low_precision_type="fp16", keep_io_types=True,
                                           op_types_to_exclude=list(keep_ops), nodes_to_exclude=list(keep_nodes))
    onnx.save(model, str(dst))
    return Path(dst)


def quantize_int8(src: Path, dst: Path, calibration: dict[str, np.ndarray], keep_ops: tuple[str, ...] = KEEP_FP32_OPS,
                  high_precision: str = "fp16") -> Path:
    """Explicit Q/DQ INT8 (entropy calibration on the CPU EP); non-quantized parts in `high_precision`."""
    from modelopt.onnx.quantization import quantize

    logging.getLogger("modelopt").setLevel(logging.WARNING)
    # ModelOpt may rewrite the file it is given (shared-constant duplication): hand it a copy
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / Path(src).name
        shutil.copy2(src, work)
        quantize(str(work), quantize_mode="int8", calibration_data=calibration, calibration_method="entropy",
                 calibration_eps=["cpu"], output_path=str(dst), op_types_to_exclude=list(keep_ops),
                 high_precision_dtype=high_precision)
    return Path(dst)


def psnr_db(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """PSNR of 8-bit frames (or any arrays on the same scale); inf when identical."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


@dataclass(frozen=True)
class StageAccuracy:
    file: str            # the stage's ONNX file, e.g. warp.onnx
    precision: str       # fp16 | int8
    max_abs: float       # largest output difference against FP32
    frame_psnr_db: float  # rendered frames through this stage against FP32 frames
    frames: int
    ships: bool
    why: str


def qdq_nodes(path: Path) -> int:
    """QuantizeLinear nodes in a graph: 0 means ModelOpt left everything in high precision."""
    import onnx

    return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path), load_external_data=False).graph.node)


def verdict(file: str, precision: str, max_abs: float, frame_psnr: float, frames: int, accuracy: dict,
            quantized: int | None = None) -> StageAccuracy:
    """Apply the profile's [accuracy] bounds. An INT8 variant with no Q/DQ nodes (`quantized` == 0)
    is the high-precision graph under another name: it is not shipped as INT8."""
    bound = accuracy["int8_frame_min_psnr_db"] if precision == "int8" else accuracy["frame_min_psnr_db"]
    ok = bool(frame_psnr >= bound)
    why = f"frame PSNR {frame_psnr:.1f} dB {'>=' if ok else '<'} {bound:.1f} dB over {frames} frames"
    if precision == "int8" and quantized == 0:
        ok, why = False, "ModelOpt inserted no Q/DQ nodes (nothing would run in INT8)"
    return StageAccuracy(file, precision, float(max_abs), float(frame_psnr), frames, ok, why)


def write_report(folder: Path, results: list[StageAccuracy]) -> Path:
    """precision_report.json: {file: {precision: {...}}}, what export/trt_build.py reads."""
    path = Path(folder) / "precision_report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    for r in results:
        report.setdefault(r.file, {})[r.precision] = asdict(r)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return path


def max_output_error(reference: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> float:
    return max(float(np.abs(reference[k].astype(np.float64) - test[k].astype(np.float64)).max()) for k in reference)
