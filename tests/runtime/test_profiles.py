"""Shipped profiles load, carry the GPU keys, and bad values are refused by name."""
from __future__ import annotations

import pytest

from talkrt.runtime.errors import OptionError
from talkrt.runtime.profiles import load_profile, profile_hash


@pytest.mark.parametrize("name", ["cpu", "rtx4090", "h100", "jetson-orin"])
def test_shipped_profiles_load(name):
    p = load_profile(name)
    assert p["name"] == name
    assert set(p["precision"]) >= {"appearance", "warp", "decode", "motion", "audio_enc"}
    if name != "cpu":
        assert p["build"]["cuda_architectures"] and p["runtime"]["cuda_graphs"]
        assert p["targets"]["renderer_fps"] > 0


def test_jetson_profile_targets_orin():
    p = load_profile("jetson-orin")
    assert p["build"]["cuda_architectures"] == [87] and p["engine"]["backend"] == "trt"


def test_profile_hash_follows_engine_settings():
    a, b = load_profile("rtx4090"), load_profile("rtx4090")
    assert profile_hash(a) == profile_hash(b)
    b["precision"]["warp"] = "fp32"
    assert profile_hash(a) != profile_hash(b)
    c = load_profile("rtx4090")
    c["targets"]["e2e_fps"] = 1.0  # targets do not change an engine
    assert profile_hash(a) == profile_hash(c)


@pytest.mark.parametrize("text,key", [
    ('[precision]\nwarp = "int4"\n', "precision.warp"),
    ('[engine]\nbackend = "cuda"\n', "engine.backend"),
    ('[shapes]\nbatch_min = 4\n', "shapes"),
    ('[build]\ncuda_architectures = ["89"]\n', "cuda_architectures"),
    ('[runtime]\nstreamz = 2\n', "runtime.streamz"),
])
def test_bad_values_are_named(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(OptionError, match=key.replace(".", r"\.")):
        load_profile(str(path))


def test_api_and_cli_read_the_same_settings():
    """One typed, frozen reading of the profile: the API's defaults are the profile's, as the CLI's."""
    import dataclasses

    from talkrt.runtime.avatar import AvatarOptions
    from talkrt.runtime.cli import _options, build_parser
    from talkrt.runtime.profiles import load_settings
    from talkrt.runtime.session import SessionOptions

    s = load_settings("cpu")
    assert s is load_settings("cpu")  # read once
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.fps = 30.0
    api = SessionOptions()
    cli = _options(build_parser().parse_args(["generate", "p.jpg", "a.wav", "-o", "o.mp4"]))
    for opts in (api, cli):
        resolved = opts.avatar_options.resolved(opts.settings)
        assert resolved.motion == s.motion_model == "diffusion" and resolved.fps == s.fps
        assert opts.resolved_controls().steps == s.steps
    assert load_settings("h100").steps == 8 and load_settings("h100").fused_warp
    raw = load_profile("cpu")
    assert "size" not in raw["render"]  # keys nothing read are gone
    assert s.crf == raw["video"]["crf"] and s.preset == raw["video"]["preset"]
    assert AvatarOptions().resolved(s).max_size == raw["render"]["max_size"]
