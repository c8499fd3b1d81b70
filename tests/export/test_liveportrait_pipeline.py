"""The liveportrait family end to end with tiny random weights the test writes in the public layout:
export to ONNX (parity with PyTorch per stage), then `talkrt generate --model liveportrait`."""
from __future__ import annotations

import argparse
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from talkrt.export import liveportrait_import as lpi  # noqa: E402
from talkrt.runtime.engine import open_engine  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared" / "conformance"
if not SHARED.is_dir():
    pytest.skip("shared/conformance is not beside the checkout", allow_module_level=True)
TINY_CONFIG = json.loads((SHARED / "liveportrait" / "tiny_config.json").read_text())


def _template(rng) -> dict:
    tpl = {"mean_exp": rng.normal(0, 0.01, 63), "std_exp": np.full(63, 0.02)}
    for k, lo, hi in (("scale", 1.4, 1.6), ("t", -0.02, 0.02), ("pitch", -8, 8), ("yaw", -10, 10), ("roll", -5, 5)):
        n = 3 if k == "t" else 1
        tpl[f"min_{k}"], tpl[f"max_{k}"] = np.full(n, lo), np.full(n, hi)
    return tpl


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A weights folder in the public layout, with tiny random weights throughout."""
    root = tmp_path_factory.mktemp("weights")
    base, retarget = root / "liveportrait" / "base_models", root / "liveportrait" / "retargeting_models"
    base.mkdir(parents=True)
    retarget.mkdir(parents=True)
    for stem in lpi.BASE_MODULES:
        shutil.copy(SHARED / "liveportrait" / "tiny" / f"{stem}.pth", base)
    shutil.copy(SHARED / "liveportrait" / "tiny" / "stitching_retargeting_module.pth", retarget)
    (root / "models.json").write_text(json.dumps(TINY_CONFIG))
    ck = torch.load(SHARED / "joyvasa" / "tiny_denoiser.pt", map_location="cpu", weights_only=False)
    args = dict(ck["args"], n_diff_steps=ck["args"]["n_diff_steps"])
    (root / "JoyVASA" / "motion_generator").mkdir(parents=True)
    (root / "JoyVASA" / "motion_template").mkdir(parents=True)
    torch.save({"model": ck["model"], "args": argparse.Namespace(**args)}, root / "JoyVASA" / "motion_generator" / "tiny.pt")
    (root / "JoyVASA" / "motion_template" / "motion_template.pkl").write_bytes(pickle.dumps(_template(np.random.default_rng(0))))
    cfg = transformers.HubertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                                    conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    transformers.HubertModel(cfg).save_pretrained(root / "chinese-hubert-base")
    return root


@pytest.fixture(scope="module")
def exported(weights) -> Path:
    from talkrt.runtime.liveportrait.weights import onnx_folder

    return onnx_folder(weights)  # exports in a subprocess, as the CLI does


def test_export_writes_every_stage(exported):
    names = {p.name for p in exported.glob("*.onnx")}
    assert {"appearance.onnx", "motion_extractor.onnx", "warp.onnx", "decode.onnx", "stitching.onnx",
            "stitching_lip.onnx", "stitching_eye.onnx", "motion.onnx", "audio_enc.onnx"} <= names
    manifest = json.loads((exported / "manifest.json").read_text())
    assert set(manifest["files"]) == names and manifest["joyvasa"]["legacy_pe"] is True


def test_onnx_matches_pytorch(weights, exported):
    import onnx

    files = lpi.find_files(weights)
    rng = np.random.default_rng(0)
    img = rng.random((1, 3, 256, 256)).astype(np.float32)
    f = lpi.load_module("appearance_feature_extractor", files["appearance_feature_extractor"], TINY_CONFIG)
    with torch.no_grad():
        want = f(torch.from_numpy(img)).numpy()
    got = open_engine(exported / "appearance.onnx").run({"image": img})["feature_3d"]
    assert np.abs(got - want).max() < 1e-4 * max(1, np.abs(want).max())
    w = lpi.load_module("warping_module", files["warping_module"], TINY_CONFIG)
    kp_s = (rng.random((1, 21, 3)) * 0.4 - 0.2).astype(np.float32)
    kp_d = kp_s + rng.normal(0, 0.02, kp_s.shape).astype(np.float32)
    with torch.no_grad():
        want = w(torch.from_numpy(got), torch.from_numpy(kp_d), torch.from_numpy(kp_s))[0].numpy()
    warped = open_engine(exported / "warp.onnx").run({"feature_3d": got, "kp_driving": kp_d, "kp_source": kp_s})["warped"]
    assert np.abs(warped - want).max() < 1e-3 * max(1, np.abs(want).max())
    grid_samples = [n for n in onnx.load(exported / "warp.onnx").graph.node if n.op_type == "GridSample"]
    assert len(grid_samples) == 2  # both 5-D samplings are standard opset-20 GridSample nodes
    m = lpi.load_module("motion_extractor", files["motion_extractor"], TINY_CONFIG)
    with torch.no_grad():
        want_m = [t.numpy() for t in m(torch.from_numpy(img))]
    got_m = open_engine(exported / "motion_extractor.onnx").run({"image": img})
    from talkrt.models.lp_motion import OUTPUTS

    for name, want_t in zip(OUTPUTS, want_m):
        assert np.abs(got_m[name] - want_t).max() < 1e-4 * max(1, np.abs(want_t).max()), name
    s = lpi.load_stitching(files["stitching_retargeting_module"], TINY_CONFIG)
    for part, fname in (("retarget_shoulder", "stitching"), ("retarget_mouth", "stitching_lip"), ("retarget_eye", "stitching_eye")):
        x = rng.random((1, s[part].mlp[0].in_features)).astype(np.float32)
        with torch.no_grad():
            want_s = s[part](torch.from_numpy(x)).numpy()
        assert np.abs(open_engine(exported / f"{fname}.onnx").run({"x": x})["delta"] - want_s).max() < 1e-5
    g = lpi.load_module("spade_generator", files["spade_generator"], TINY_CONFIG)
    with torch.no_grad():
        want = g(torch.from_numpy(warped)).numpy()
    image = open_engine(exported / "decode.onnx").run({"warped": warped})["image"]
    assert np.abs(image - want).max() < 1e-3


def test_audio_encoder_matches_pytorch(weights, exported):
    """HuBERT (transformers, local folder) + JoyVASA's feature map: ONNX vs PyTorch, any length."""
    from talkrt.export.export_liveportrait import load_hubert
    from talkrt.models.joyvasa import AudioEncoder
    from talkrt.export.joyvasa_import import load_joyvasa

    jv, _, _ = load_joyvasa(next((weights / "JoyVASA").rglob("*.pt")))
    enc = AudioEncoder(load_hubert(weights / "chinese-hubert-base"), jv.audio_feature_map).eval()
    wave = np.random.default_rng(1).standard_normal((1, 24000)).astype(np.float32) * 0.1
    with torch.no_grad():
        want = enc(torch.from_numpy(wave)).numpy()
    got = open_engine(exported / "audio_enc.onnx").run({"waveform": wave})["audio_features"]
    assert got.shape == want.shape == (1, 74, 64)  # 1.5 s at 50 Hz (HuBERT's 320-sample stride)
    assert np.abs(got - want).max() < 1e-3 * max(1, np.abs(want).max())


def test_safetensors_reupload_loads(tmp_path):
    from safetensors.torch import save_file

    state = torch.load(SHARED / "liveportrait" / "tiny" / "warping_module.pth", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "warping_module.safetensors")
    w = lpi.load_module("warping_module", tmp_path / "warping_module.safetensors", TINY_CONFIG)
    assert torch.equal(w.state_dict()["fourth.weight"], state["fourth.weight"])
    parts = torch.load(SHARED / "liveportrait" / "tiny" / "stitching_retargeting_module.pth", weights_only=True)
    flat = {f"{p}.{k}": v.contiguous() for p, sd in parts.items() for k, v in sd.items()}
    save_file(flat, tmp_path / "stitching_retargeting_module.safetensors")
    nets = lpi.load_stitching(tmp_path / "stitching_retargeting_module.safetensors", TINY_CONFIG)
    assert set(nets) == {"retarget_shoulder", "retarget_mouth", "retarget_eye"}


def test_runtime_sampler_matches_reference_run(exported):
    """The numpy/ORT JoyVASA sampler reproduces the reference sampling run (fixture), given the same noise.
    The fixture was made with the fixed positional encoding, so compare an export made that way."""
    from talkrt.runtime.liveportrait.motion import JoyVASASampler

    z = np.load(SHARED / "joyvasa" / "cases.npz")
    fixed = exported.parent / "fixed_pe"
    if not (fixed / "motion.onnx").exists():
        from talkrt.export.export_liveportrait import _export
        from talkrt.export.joyvasa_import import load_joyvasa

        fixed.mkdir()
        jv, _, _ = load_joyvasa(next((exported.parent / "JoyVASA").rglob("*.pt")), legacy_pe=False)
        c = jv.cfg
        ex = (torch.randn(2, c.n_motions, c.motion_feat_dim), torch.randn(2, c.n_motions, c.feature_dim),
              torch.randn(2, c.n_prev_motions, c.motion_feat_dim), torch.randn(2, c.n_prev_motions, c.feature_dim),
              torch.tensor([3.0, 7.0]))
        names = ["motion_noisy", "audio", "prev_motion", "prev_audio", "step"]
        _export(jv.denoising_net, ex, fixed / "motion.onnx", names, ["motion"], {n: {0: "batch"} for n in names + ["motion"]})
        shutil.copy(exported / "motion_start.npz", fixed)
        shutil.copy(exported / "manifest.json", fixed)
    s = JoyVASASampler(fixed)
    out = s.window(z["sample.in.audio_feat"][0], s.start_motion, s.start_audio, z["sample.in.motion_at_T"][0],
                   z["sample.in.noise"][:, 0], cfg_scale=2.0)
    assert np.abs(out - z["sample.out.motion"][0]).max() < 1e-3 * max(1, np.abs(z["sample.out.motion"]).max())


def test_numpy_keypoint_glue_matches_reference():
    from talkrt.runtime.liveportrait import keypoints as kpm

    z = np.load(SHARED / "liveportrait" / "tiny" / "cases.npz")
    deg = {k: kpm.bins_to_degrees(z[f"M.out.{k}"]) for k in ("pitch", "yaw", "roll")}
    for k in deg:
        np.testing.assert_allclose(deg[k], z[f"glue.out.{k}_deg"], atol=1e-3)
    rot = kpm.rotation_matrix(deg["pitch"], deg["yaw"], deg["roll"])
    np.testing.assert_allclose(rot, z["glue.out.rotation"], atol=1e-5)
    kp = kpm.transform_keypoints(z["M.out.kp"], rot, z["M.out.exp"], z["M.out.scale"], z["M.out.t"])
    np.testing.assert_allclose(kp, z["glue.out.kp_transformed"], atol=1e-5)
    x_d = z["S.stitching.in"][:, 63:].reshape(2, 21, 3)
    stitched = kpm.apply_stitching(z["S.stitching.out"], x_d)
    np.testing.assert_allclose(stitched, z["glue.out.kp_driving_stitched"], atol=1e-5)


def test_generate_end_to_end(weights, exported, tmp_path, portrait_path, speech_path, capsys):
    import av
    import soundfile as sf

    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.cli import main

    clip = tmp_path / "clip.wav"
    sf.write(clip, load_audio(speech_path)[:8000], 16000)  # W takes ~1.5 s a frame on ORT even when tiny
    out = tmp_path / "lp.mp4"
    code = main(["generate", str(portrait_path), str(clip), "-o", str(out), "--model", "liveportrait",
                 "--weights", str(weights), "--quiet"])
    assert code == 0, capsys.readouterr().err
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert abs(len(frames) - 12) <= 1 and frames[0].shape == (512, 512, 3)
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 0.5  # the rendered face changes


def test_liveportrait_options_are_checked(tmp_path, portrait_path, speech_path, capsys):
    from talkrt.runtime.cli import main

    base = ["generate", str(portrait_path), str(speech_path), "-o", str(tmp_path / "o.mp4")]
    assert main(base + ["--model", "liveportrait"]) == 2
    assert "needs --weights" in capsys.readouterr().err
    assert main(base + ["--model", "liveportrait", "--weights", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(base + ["--weights", str(tmp_path)]) == 2
    assert "only used with --model liveportrait" in capsys.readouterr().err


def test_fetch_writes_the_layout_the_importer_reads(tmp_path):
    from talkrt.runtime.liveportrait.weights import SOURCES, fetch

    calls = []

    def fake_download(repo_id, allow_patterns, local_dir):
        calls.append((repo_id, tuple(allow_patterns), local_dir))
        for pattern in allow_patterns:
            p = Path(local_dir) / pattern.replace("*", "file")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"")

    fetch("liveportrait", tmp_path, download=fake_download)
    fetch("joyvasa", tmp_path, download=fake_download)
    assert [c[0] for c in calls] == [r for k in ("liveportrait", "joyvasa") for r, _, _ in SOURCES[k]]
    assert (tmp_path / "liveportrait" / "base_models").is_dir()
    assert (tmp_path / "liveportrait" / "retargeting_models").is_dir()
    assert (tmp_path / "JoyVASA" / "motion_template").is_dir()


def _lp_frames(avatar, samples, chunk_ms):
    from talkrt.runtime.session import stream_file
    from talkrt.runtime.stream import Stream

    return list(stream_file(Stream(avatar, policy="wait"), samples, chunk_ms))


def _lp_motion(avatar, samples, chunk):
    """The family's motion stream fed `chunk` samples at a time (no rendering: W is slow on ORT)."""
    from talkrt.runtime.motion import MotionControls
    from talkrt.runtime.stream import AudioTimeline, _Snapshot

    ms = avatar.family.motion_stream(avatar, MotionControls(), avatar.settings)
    timeline, rows = AudioTimeline(), []
    for a in range(0, len(samples), chunk):
        timeline.append(samples[a:a + chunk])
        rows.append(ms.advance(_Snapshot(timeline)))
    timeline.ended = True
    rows.append(ms.advance(_Snapshot(timeline)))
    return np.concatenate(rows)


def test_stream_is_chunk_invariant_and_anchored_per_stream(weights, exported, portrait_path, speech_path):
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.avatar import Avatar, AvatarOptions

    clip = load_audio(speech_path)[:24000]
    avatar = Avatar.prepare(portrait_path, AvatarOptions(family="liveportrait", weights=str(weights), crop=True))
    whole = _lp_motion(avatar, clip, len(clip))
    assert whole.shape == (38, 70)  # round(1.5 s * 25) frames, several JoyVASA windows
    for chunk in (160, 5920):
        assert np.array_equal(_lp_motion(avatar, clip, chunk), whole)
    short = clip[:4000]  # and through the whole stream, frames included
    a, b = _lp_frames(avatar, short, 10), _lp_frames(avatar, short, 1e9)
    assert len(a) == len(b) == 6 and all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    # relative driving is anchored on each stream's first frame: a stream whose speech starts later
    # still starts from the source pose
    later = _lp_motion(avatar, clip[8000:], 1600)
    r1, r2 = avatar.renderer(), avatar.renderer()
    first_whole, first_later = r1.render(whole[0]).copy(), r2.render(later[0]).copy()
    assert np.abs(first_later.astype(int) - first_whole).mean() < 1.0
    assert np.abs(r2.render(later[5]).astype(int) - first_later).mean() > 0.1  # and then moves


def test_torch_backend_matches_onnx_runtime(weights, exported, portrait_path, speech_path, tmp_path, monkeypatch):
    """The torch backend (built from the export's torch/ state dicts; on CPU here) renders what ORT does."""
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.avatar import Avatar, AvatarOptions
    from talkrt.runtime.liveportrait import family

    assert (exported / "torch" / "config.json").is_file()
    profile = tmp_path / "torchcpu.toml"
    profile.write_text('[engine]\nbackend = "torch"\n')
    monkeypatch.setattr(family, "TORCH_DEVICE", "cpu")
    clip = load_audio(speech_path)[:4000]
    options = AvatarOptions(family="liveportrait", weights=str(weights), crop=True)
    ref = _lp_frames(Avatar.prepare(portrait_path, options), clip, 100)
    got = _lp_frames(Avatar.prepare(portrait_path, options, str(profile)), clip, 100)
    assert len(got) == len(ref) == 6
    motion_err = max(float(np.abs(a.motion - b.motion).max()) for a, b in zip(got, ref))
    pixel_err = max(float(np.abs(a.image.astype(int) - b.image).max()) for a, b in zip(got, ref))
    assert motion_err < 1e-3 and pixel_err <= 2, (motion_err, pixel_err)
