"""JoyVASA: denoiser, schedule and a whole sampling run against the reference fixtures; safe loading."""
from __future__ import annotations

import argparse
import os
import pathlib
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from talkrt.export.joyvasa_import import denormalize, load_joyvasa, read_motion_template  # noqa: E402
from talkrt.models.joyvasa import cosine_schedule  # noqa: E402
from talkrt.runtime.errors import TalkrtError  # noqa: E402

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "joyvasa"
if not CONF.is_dir():
    pytest.skip("shared/conformance is not beside the checkout", allow_module_level=True)
CASES = np.load(CONF / "cases.npz")


@pytest.fixture(scope="module")
def model():
    m, args, audio = load_joyvasa(CONF / "tiny_denoiser.pt", legacy_pe=False)  # the fixture uses the fixed PE
    assert args["feature_dim"] == 64 and audio == {}
    return m


def test_schedule():
    s = cosine_schedule(50)
    for k in ("betas", "alphas", "alpha_bars", "sigmas_flex", "sigmas_inflex"):
        np.testing.assert_allclose(s[k].numpy(), CASES[f"sched.{k}"], atol=1e-5)


def test_denoiser_and_audio_map(model):
    args = [torch.from_numpy(CASES[f"denoise.in.{k}"]) for k in ("motion_noisy", "audio_feat", "prev_motion", "prev_audio", "step")]
    with torch.no_grad():
        out = model.denoising_net(*args).numpy()
        mapped = model.audio_feature_map(torch.from_numpy(CASES["map.in.hidden_768"])).numpy()
    assert np.abs(out - CASES["denoise.out"]).max() < 1e-4 * max(1, np.abs(CASES["denoise.out"]).max())
    assert np.abs(mapped - CASES["map.out.audio_feat"]).max() < 1e-4


def test_whole_sampling_run(model):
    out = model.sample(torch.from_numpy(CASES["sample.in.audio_feat"]), motion_at_T=torch.from_numpy(CASES["sample.in.motion_at_T"]),
                       noise=torch.from_numpy(CASES["sample.in.noise"]), cfg_scale=2.0).numpy()
    assert np.abs(out - CASES["sample.out.motion"]).max() < 1e-4 * max(1, np.abs(CASES["sample.out.motion"]).max())


def test_legacy_positional_encoding_switch(tmp_path):
    """The public weights' PE adds one row pe[L] to every token; the switch must change the output."""
    legacy, _, _ = load_joyvasa(CONF / "tiny_denoiser.pt", legacy_pe=True)
    args = [torch.from_numpy(CASES[f"denoise.in.{k}"]) for k in ("motion_noisy", "audio_feat", "prev_motion", "prev_audio", "step")]
    with torch.no_grad():
        out = legacy.denoising_net(*args).numpy()
    assert np.abs(out - CASES["denoise.out"]).max() > 1e-3


def test_namespace_args_load_and_hostile_pickles_do_not(tmp_path):
    ck = torch.load(CONF / "tiny_denoiser.pt", map_location="cpu", weights_only=False)
    ns = argparse.Namespace(**ck["args"], out_dir=pathlib.PosixPath("/tmp/x"))
    torch.save({"model": ck["model"], "args": ns}, tmp_path / "ns.pt")
    m, args, _ = load_joyvasa(tmp_path / "ns.pt")
    assert args["n_motions"] == 100 and m.cfg.legacy_pe

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"model": ck["model"], "args": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(TalkrtError, match="refuses to unpickle"):
        load_joyvasa(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_motion_template(tmp_path):
    rng = np.random.default_rng(0)
    tpl = {"mean_exp": rng.random(63), "std_exp": rng.random(63) + 0.1}
    for k, n in (("scale", 1), ("t", 3), ("pitch", 1), ("yaw", 1), ("roll", 1)):
        tpl[f"min_{k}"], tpl[f"max_{k}"] = -rng.random(n), rng.random(n)
    tpl["mean_R"] = rng.random(9)
    (tmp_path / "motion_template.pkl").write_bytes(pickle.dumps(tpl))
    t = read_motion_template(tmp_path / "motion_template.pkl")
    x = rng.random((5, 70)).astype(np.float32)
    d = denormalize(x, t)
    np.testing.assert_allclose(d["exp"], x[:, :63] * tpl["std_exp"] + tpl["mean_exp"], rtol=1e-5)
    np.testing.assert_allclose(d["yaw"], x[:, 68] * (tpl["max_yaw"][0] - tpl["min_yaw"][0]) + tpl["min_yaw"][0], rtol=1e-5)
    assert d["scale"].shape == (5, 1) and d["t"].shape == (5, 3)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({**tpl, "hook": os.getcwd}))
    with pytest.raises(TalkrtError, match="refusing"):
        read_motion_template(tmp_path / "evil.pkl")
