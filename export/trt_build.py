"""TensorRT engine builder for the 10.x (JetPack 6: 10.3) and 11.x APIs, plus the engine manifest.

One path for both majors (specs/toolchain.md sections 1 and 8): strongly typed networks (the flag is
required on 10.x and ignored on 11.x), precision carried by the ONNX itself (ModelOpt AutoCast for
FP16, Q/DQ for INT8, see export/precision.py), explicit optimization profiles, a timing cache per
(GPU, TensorRT version), `builder_optimization_level`, and 5-D GridSample rewritten to talkrt's
plugin (export/trt_rewrite.py) whose library is loaded before parsing.

    python -m talkrt.export.trt_build --onnx WEIGHTS/onnx --profile rtx4090 --plugin build/libtalkrt_trt_plugin.so

Everything here except `build_engine` and `environment` is plain Python and tested without TensorRT.
"""
from __future__ import annotations

import argparse
import ctypes
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from talkrt.export.trt_rewrite import PLUGIN_NAME, PLUGIN_NAMESPACE, rewrite_grid_sample_3d
from talkrt.runtime.backends.trt import PLUGIN_LIBRARY
from talkrt.runtime.manifest import EngineEntry, EngineManifest, file_sha256
from talkrt.runtime.profiles import load_profile, profile_hash


def family_stages(model: str = "liveportrait") -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """(stage -> ONNX files, stage -> batch multiple) that a model family builds engines for: the
    family's own declaration (runtime/<family>/family.py), so a new family needs no edit here."""
    from talkrt.runtime.avatar import get_family

    family = get_family(model)
    return dict(getattr(family, "engine_stages", {})), dict(getattr(family, "engine_batch_scale", {}))


STAGE_FILES, BATCH_SCALE = family_stages("liveportrait")

# ranges of the named dynamic dimensions other than the batch: (min, opt, max)
DIM_RANGES = {
    "samples": (8_000, 64_000, 480_000),  # audio_enc waveform, 0.5 s .. 30 s windows at 16 kHz
    "frames": (25, 200, 1_500),
}


@dataclass(frozen=True)
class InputShapes:
    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @property
    def dynamic(self) -> bool:
        return self.min != self.max


def optimization_shapes(model: onnx.ModelProto, batch: tuple[int, int, int],
                        ranges: dict[str, tuple[int, int, int]] = DIM_RANGES) -> list[InputShapes]:
    """min/opt/max of every graph input: fixed dims as they are, `batch` from the profile, other
    named dims from `ranges`. The motion denoiser runs guidance as a batch, so its batch is 2x."""
    initializers = {i.name for i in model.graph.initializer}
    out = []
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        lo, mid, hi = [], [], []
        for d in inp.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                lo.append(d.dim_value), mid.append(d.dim_value), hi.append(d.dim_value)
            elif d.dim_param == "batch":
                lo.append(batch[0]), mid.append(batch[1]), hi.append(batch[2])
            elif d.dim_param in ranges:
                r = ranges[d.dim_param]
                lo.append(r[0]), mid.append(r[1]), hi.append(r[2])
            else:
                raise ValueError(f"input {inp.name!r}: dynamic dimension {d.dim_param or '?'!r} has no range "
                                 f"(known: batch, {', '.join(ranges)})")
        out.append(InputShapes(inp.name, tuple(lo), tuple(mid), tuple(hi)))
    return out


def choose_onnx(folder: Path, name: str, precision: str, report: dict | None) -> Path:
    """The ONNX to build for a stage file at the profile's precision: `x.onnx`, `x.fp16.onnx` or
    `x.int8.onnx`. INT8 is used only where the accuracy report says it stayed within tolerance."""
    stem = name[: -len(".onnx")]
    if precision == "fp32":
        path = folder / name
    else:
        path = folder / f"{stem}.{precision}.onnx"
        verdict = (report or {}).get(name, {}).get(precision, {})
        if not verdict.get("ships", False):
            why = verdict.get("why", "no accuracy report for it (run python -m talkrt.export.precision)")
            raise ValueError(f"{name}: {precision} is not shipped: {why}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (run export/precision.py for {precision})")
    return path


def environment(trt: Any) -> dict[str, str]:
    """TensorRT version and the GPU it builds for (cuda-python; torch as a fallback)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:  # cuda-python < 12.8 layout
        from cuda import cudart  # type: ignore[no-redef]
    err, props = cudart.cudaGetDeviceProperties(0)
    if int(err) != 0:
        raise RuntimeError(f"cudaGetDeviceProperties failed ({err})")
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return {"tensorrt_version": trt.__version__, "compute_capability": f"{props.major}.{props.minor}",
            "gpu_name": name.strip("\x00 ")}


def network_flags(trt: Any) -> int:
    """STRONGLY_TYPED where the enum has it (10.x needs it; 11.x ignores it, always strongly typed)."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def load_plugins(trt: Any, logger: Any, libraries: list[Path]) -> None:
    trt.init_libnvinfer_plugins(logger, "")
    for lib in libraries:
        if not Path(lib).is_file():
            raise FileNotFoundError(f"plugin library {lib} is missing (build it: cmake -S . -B build && cmake --build build)")
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    registry = trt.get_plugin_registry()
    found = registry.get_creator(PLUGIN_NAME, "1", PLUGIN_NAMESPACE) if libraries else None
    if libraries and found is None:
        raise RuntimeError(f"{PLUGIN_NAMESPACE}::{PLUGIN_NAME} is not registered after loading {libraries}")


def build_engine(trt: Any, logger: Any, onnx_path: Path, engine_path: Path, shapes: list[InputShapes],
                 build: dict, timing_cache: Path | None) -> None:
    """The thin TensorRT part: parse, configure, build, serialize."""
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path.name}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(build["workspace_gib"] * (1 << 30)))
    config.builder_optimization_level = build["opt_level"]
    if build["version_compatible"]:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if any(s.dynamic for s in shapes):
        profile = builder.create_optimization_profile()
        for s in shapes:
            profile.set_shape(s.name, s.min, s.opt, s.max)
        config.add_optimization_profile(profile)
    cache = None
    if timing_cache is not None:
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"{onnx_path.name}: TensorRT engine build failed (see the log above)")
    engine_path.write_bytes(bytes(plan))
    if cache is not None:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))


def build_all(onnx_folder: Path, out: Path, profile_name: str, plugins: list[Path], stages: list[str] | None = None,
              report: dict | None = None, trt: Any = None, model: str = "liveportrait") -> EngineManifest:
    """Rewrite, build and hash every stage's engines into `out`, then write the manifest."""
    stage_files, batch_scale = family_stages(model)
    if trt is None:
        import tensorrt as trt  # noqa: PLC0415 (only here: TensorRT is optional)
    profile = load_profile(profile_name)
    env = environment(trt)
    logger = trt.Logger(trt.Logger.WARNING)
    load_plugins(trt, logger, plugins)
    out.mkdir(parents=True, exist_ok=True)
    for lib in plugins[:1]:  # the runtime loads the plugin from beside the engines
        shutil.copy2(lib, out / PLUGIN_LIBRARY)
    cache = out / f"timing_{env['compute_capability']}_{env['tensorrt_version']}.cache" \
        if profile["build"]["timing_cache"] else None
    s = profile["shapes"]
    entries = []
    for stage in stages or list(stage_files):
        precision = profile["precision"].get(stage, "fp32")
        for name in stage_files[stage]:
            if not (onnx_folder / name).is_file():
                continue
            src = choose_onnx(onnx_folder, name, precision, report)
            model, rewrites = rewrite_grid_sample_3d(onnx.load(src))
            staged = out / f"{name[:-5]}.trt.onnx"
            onnx.save(model, staged)
            batch = tuple(batch_scale.get(stage, 1) * b for b in (s["batch_min"], s["batch_opt"], s["batch_max"]))
            engine = out / f"{name[:-5]}.engine"
            t0 = time.perf_counter()
            build_engine(trt, logger, staged, engine, optimization_shapes(model, batch), profile["build"], cache)
            print(f"{engine.name}: {precision}, {len(rewrites)} plugin node(s), {time.perf_counter() - t0:.0f} s")
            entries.append(EngineEntry(stage, engine.name, file_sha256(engine), name, file_sha256(onnx_folder / name),
                                       precision, (f"{PLUGIN_NAMESPACE}::{PLUGIN_NAME}",) if rewrites else ()))
    manifest = EngineManifest(env["tensorrt_version"], env["compute_capability"], env["gpu_name"], profile["name"],
                              profile_hash(profile), profile["build"]["version_compatible"], tuple(entries))
    manifest.save(out)
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", type=Path, required=True, help="folder of exported ONNX (and .fp16/.int8 variants)")
    ap.add_argument("--profile", required=True)
    ap.add_argument("--out", type=Path, help="engine folder (default: ONNX folder/engines/<profile>)")
    ap.add_argument("--plugin", type=Path, action="append", default=[], help="libtalkrt_trt_plugin.so")
    ap.add_argument("--model", default="liveportrait", help="model family whose stages to build (default liveportrait)")
    ap.add_argument("--stage", action="append", help=f"stages to build (liveportrait: {', '.join(STAGE_FILES)})")
    ap.add_argument("--report", type=Path, help="precision report (default: ONNX folder/precision_report.json)")
    args = ap.parse_args(argv)
    import json

    report_path = args.report or args.onnx / "precision_report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    out = args.out or args.onnx / "engines" / Path(args.profile).stem
    try:
        build_all(args.onnx, out, args.profile, args.plugin, args.stage, report, model=args.model)
    except (ValueError, FileNotFoundError, RuntimeError, ImportError) as exc:
        sys.exit(f"talkrt: {exc}")


if __name__ == "__main__":
    main()
