"""Engine manifests: what a TensorRT engine was built from and for, checked before it is loaded.

A serialized engine runs only on the TensorRT version and GPU architecture it was built with, and
it bakes in the precision and shapes of one profile. `export/trt_build.py` writes one manifest per
engine folder; the `trt` backend refuses an engine whose manifest does not match this machine, the
profile asked for, or the ONNX file it claims to come from.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from talkrt.runtime.errors import TalkrtError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class EngineEntry:
    stage: str            # stage vocabulary: appearance, warp, decode, ...
    engine: str           # file name inside the engine folder
    engine_sha256: str
    onnx: str             # the ONNX file it was built from (name inside the weights folder)
    onnx_sha256: str
    precision: str        # fp32 | fp16 | int8
    plugins: tuple[str, ...] = ()  # plugin op names the engine needs (e.g. talkrt::GridSample3D)


@dataclass(frozen=True)
class EngineManifest:
    tensorrt_version: str     # e.g. "10.3.0"
    compute_capability: str   # e.g. "8.7"
    gpu_name: str
    profile: str
    profile_hash: str
    version_compatible: bool = False
    engines: tuple[EngineEntry, ...] = ()
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def entry(self, stage: str) -> EngineEntry:
        for e in self.engines:
            if e.stage == stage:
                return e
        raise TalkrtError(f"engine manifest", f"has no engine for stage {stage!r} "
                          f"(built: {', '.join(e.stage for e in self.engines) or 'none'})")

    def save(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        data = asdict(self)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> "EngineManifest":
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            raise TalkrtError(path, "engine manifest is missing: build engines with `python -m talkrt.export.trt_build`")
        try:
            data = json.loads(path.read_text())
            if data.get("format_version") != FORMAT_VERSION:
                raise TalkrtError(path, f"manifest format {data.get('format_version')} is not {FORMAT_VERSION}: rebuild")
            engines = tuple(EngineEntry(**{**e, "plugins": tuple(e.get("plugins", ()))}) for e in data.pop("engines"))
            return cls(engines=engines, **data)
        except (ValueError, TypeError, KeyError) as exc:
            raise TalkrtError(path, f"is not a talkrt engine manifest ({exc.__class__.__name__}: {exc})") from None


def _major_minor(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".")[:2] if x.isdigit())


def check_manifest(m: EngineManifest, *, tensorrt_version: str, compute_capability: str, profile: str,
                   profile_hash: str, folder: Path, onnx_folder: Path | None = None) -> None:
    """Raise a one-line TalkrtError naming the first mismatch; return quietly when the engines fit."""
    where = Path(folder) / MANIFEST_NAME
    rebuild = f"rebuild with `python -m talkrt.export.trt_build --profile {profile}`"
    if m.compute_capability != compute_capability:
        raise TalkrtError(where, f"engines were built for sm_{m.compute_capability.replace('.', '')} ({m.gpu_name}), "
                          f"this GPU is sm_{compute_capability.replace('.', '')}: {rebuild}")
    same_version = m.tensorrt_version == tensorrt_version
    # version-compatible engines run on a newer TensorRT of the same or next major, never an older one
    forward_ok = m.version_compatible and _major_minor(tensorrt_version) >= _major_minor(m.tensorrt_version)
    if not (same_version or forward_ok):
        raise TalkrtError(where, f"engines were built with TensorRT {m.tensorrt_version}, this machine has "
                          f"{tensorrt_version}: {rebuild}")
    if m.profile_hash != profile_hash:
        raise TalkrtError(where, f"engines were built for profile {m.profile!r} ({m.profile_hash}), the profile "
                          f"asked for is {profile!r} ({profile_hash}) with different precision/shapes: {rebuild}")
    for e in m.engines:
        path = Path(folder) / e.engine
        if not path.is_file():
            raise TalkrtError(path, f"engine for stage {e.stage!r} listed in the manifest is missing: {rebuild}")
        if file_sha256(path) != e.engine_sha256:
            raise TalkrtError(path, "engine file does not match its manifest hash (changed or truncated): " + rebuild)
        if onnx_folder is not None and (Path(onnx_folder) / e.onnx).is_file() \
                and file_sha256(Path(onnx_folder) / e.onnx) != e.onnx_sha256:
            raise TalkrtError(Path(onnx_folder) / e.onnx, f"differs from the ONNX the {e.stage} engine was built "
                              f"from (new weights?): {rebuild}")
