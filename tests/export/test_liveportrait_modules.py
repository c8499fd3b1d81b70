"""talkrt's LivePortrait modules against the reference: full-size key layout and tiny fixtures."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from talkrt.export import liveportrait_import as lpi  # noqa: E402
from talkrt.models import lp_stitching as lps  # noqa: E402
from talkrt.runtime.errors import TalkrtError  # noqa: E402

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "liveportrait"
if not CONF.is_dir():
    pytest.skip("shared/conformance is not beside the checkout", allow_module_level=True)
TINY_CONFIG = json.loads((CONF / "tiny_config.json").read_text())
CASES = np.load(CONF / "tiny" / "cases.npz")


def _close(got, want, rel):
    got = got.detach().numpy() if hasattr(got, "detach") else got
    scale = max(1.0, float(np.abs(want).max()))
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= rel * scale, np.abs(got - want).max()


@pytest.mark.parametrize("stem", list(lpi.BASE_MODULES))
def test_full_size_keys_and_shapes(stem):
    want = {k: tuple(v) for k, v in json.loads((CONF / "full_keys.json").read_text())[stem].items()}
    with torch.device("meta"):
        model = lpi.build(stem)
    got = lpi.public_key_shapes(model, spectral=stem == "spade_generator")
    assert got == want


def test_full_size_stitching_keys():
    full = json.loads((CONF / "full_keys.json").read_text())
    for part, net in lpi.build_stitching().items():
        want = {k: tuple(v) for k, v in full[f"stitching_retargeting_module/{part}"].items()}
        assert lpi.public_key_shapes(net) == want


@pytest.fixture(scope="module")
def tiny():
    mods = {stem: lpi.load_module(stem, CONF / "tiny" / f"{stem}.pth", TINY_CONFIG) for stem in lpi.BASE_MODULES}
    mods["S"] = lpi.load_stitching(CONF / "tiny" / "stitching_retargeting_module.pth", TINY_CONFIG)
    return mods


def test_appearance_matches(tiny):
    with torch.no_grad():
        out = tiny["appearance_feature_extractor"](torch.from_numpy(CASES["F.in.image"]))
    _close(out, CASES["F.out.feature_3d"], 1e-4)


def test_motion_extractor_and_keypoint_glue(tiny):
    from talkrt.models.lp_motion import OUTPUTS

    with torch.no_grad():
        outs = dict(zip(OUTPUTS, tiny["motion_extractor"](torch.from_numpy(CASES["M.in.image"]))))
    for name in OUTPUTS:
        _close(outs[name], CASES[f"M.out.{name}"], 1e-4)
    deg = {k: lps.bins_to_degrees(outs[k]) for k in ("pitch", "yaw", "roll")}
    for k in deg:
        _close(deg[k], CASES[f"glue.out.{k}_deg"], 1e-4)
    rot = lps.rotation_matrix(deg["pitch"], deg["yaw"], deg["roll"])
    _close(rot, CASES["glue.out.rotation"], 1e-4)
    kp = lps.transform_keypoints(outs["kp"], rot, outs["exp"], outs["scale"], outs["t"])
    _close(kp, CASES["glue.out.kp_transformed"], 1e-4)


def test_warping_matches(tiny):
    with torch.no_grad():
        out, occ, deform = tiny["warping_module"](*(torch.from_numpy(CASES[f"W.in.{k}"])
                                                    for k in ("feature_3d", "kp_driving", "kp_source")))
    _close(deform, CASES["W.out.deformation"], 1e-3)
    _close(occ, CASES["W.out.occlusion_map"], 1e-3)
    _close(out, CASES["W.out.out"], 1e-3)


def test_spade_decoder_matches(tiny):
    with torch.no_grad():
        image = tiny["spade_generator"](torch.from_numpy(CASES["G.in.feature"]))
    _close(image, CASES["G.out.image"], 1e-3)


def test_stitching_mlps_and_glue(tiny):
    for part, name in (("retarget_shoulder", "stitching"), ("retarget_mouth", "lip"), ("retarget_eye", "eye")):
        with torch.no_grad():
            out = tiny["S"][part](torch.from_numpy(CASES[f"S.{name}.in"]))
        _close(out, CASES[f"S.{name}.out"], 1e-4)
    x = torch.from_numpy(CASES["S.stitching.in"])
    with torch.no_grad():
        stitched = lps.stitch(tiny["S"]["retarget_shoulder"], x[:, :63].reshape(2, 21, 3), x[:, 63:].reshape(2, 21, 3))
    _close(stitched, CASES["glue.out.kp_driving_stitched"], 1e-4)


def test_bad_checkpoints_are_named(tmp_path):
    state = torch.load(CONF / "tiny" / "appearance_feature_extractor.pth", weights_only=True)
    missing = dict(state)
    missing.pop("second.weight")
    torch.save(missing, tmp_path / "a.pth")
    with pytest.raises(TalkrtError, match="second.weight"):
        lpi.load_module("appearance_feature_extractor", tmp_path / "a.pth", TINY_CONFIG)
    extra = dict(state, **{"bogus.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "b.pth")
    with pytest.raises(TalkrtError, match="bogus.weight"):
        lpi.load_module("appearance_feature_extractor", tmp_path / "b.pth", TINY_CONFIG)
    wrong = dict(state, **{"second.bias": torch.zeros(3)})
    torch.save(wrong, tmp_path / "c.pth")
    with pytest.raises(TalkrtError, match="second.bias"):
        lpi.load_module("appearance_feature_extractor", tmp_path / "c.pth", TINY_CONFIG)
    torch.save({"weights": state, "args": Path("x")}, tmp_path / "d.pth")  # a pickled non-tensor object
    with pytest.raises(TalkrtError, match="refusing to unpickle"):
        lpi.load_module("appearance_feature_extractor", tmp_path / "d.pth", TINY_CONFIG)
