"""Engine manifests: round trip, and every mismatch refused with a message that says what to do."""
from __future__ import annotations

import pytest

from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.manifest import EngineEntry, EngineManifest, check_manifest, file_sha256


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "warp.engine").write_bytes(b"plan-bytes")
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "warp.onnx").write_bytes(b"onnx-bytes")
    entry = EngineEntry("warp", "warp.engine", file_sha256(tmp_path / "warp.engine"), "warp.onnx",
                        file_sha256(tmp_path / "onnx" / "warp.onnx"), "fp16", ("talkrt::GridSample3D",))
    EngineManifest("10.3.0", "8.7", "Orin", "jetson-orin", "abc123", False, (entry,)).save(tmp_path)
    return tmp_path


def _check(folder, **over):
    env = dict(tensorrt_version="10.3.0", compute_capability="8.7", profile="jetson-orin", profile_hash="abc123")
    env.update(over)
    check_manifest(EngineManifest.load(folder), folder=folder, onnx_folder=folder / "onnx", **env)


def test_round_trip_and_match(folder):
    m = EngineManifest.load(folder)
    assert m.entry("warp").plugins == ("talkrt::GridSample3D",)
    _check(folder)


@pytest.mark.parametrize("over,match", [
    (dict(compute_capability="8.9"), "built for sm_87 .* this GPU is sm_89"),
    (dict(tensorrt_version="11.4.0"), "TensorRT 10.3.0, this machine has 11.4.0"),
    (dict(profile_hash="fff"), "profile"),
])
def test_mismatch_is_refused(folder, over, match):
    with pytest.raises(TalkrtError, match=match) as err:
        _check(folder, **over)
    assert "rebuild with" in str(err.value) and "\n" not in str(err.value)


def test_changed_engine_or_onnx_is_refused(folder):
    (folder / "onnx" / "warp.onnx").write_bytes(b"new weights")
    with pytest.raises(TalkrtError, match="new weights"):
        _check(folder)
    (folder / "warp.engine").write_bytes(b"truncated")
    with pytest.raises(TalkrtError, match="does not match its manifest hash"):
        _check(folder)


def test_version_compatible_runs_forward_only(tmp_path):
    (tmp_path / "e.engine").write_bytes(b"x")
    e = EngineEntry("decode", "e.engine", file_sha256(tmp_path / "e.engine"), "decode.onnx", "0", "fp16")
    EngineManifest("10.15.0", "8.9", "RTX 4090", "rtx4090", "h", True, (e,)).save(tmp_path)
    env = dict(compute_capability="8.9", profile="rtx4090", profile_hash="h", folder=tmp_path)
    check_manifest(EngineManifest.load(tmp_path), tensorrt_version="11.4.0", **env)
    with pytest.raises(TalkrtError, match="TensorRT 10.15.0"):
        check_manifest(EngineManifest.load(tmp_path), tensorrt_version="10.3.0", **env)


def test_missing_or_broken_manifest(tmp_path):
    with pytest.raises(TalkrtError, match="manifest is missing"):
        EngineManifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format_version": 1, "engines": [{"x": 1}]}')
    with pytest.raises(TalkrtError, match="not a talkrt engine manifest"):
        EngineManifest.load(tmp_path)
    with pytest.raises(TalkrtError, match="no engine for stage"):
        EngineManifest("1", "8.9", "g", "p", "h").entry("warp")
