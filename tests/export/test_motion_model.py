"""The diffusion motion model: conditioning, guidance, ONNX parity, sampling windows, training."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from talkrt.export.export_motion import example_inputs, export_motion  # noqa: E402
from talkrt.models.motion_dit import COND_AUDIO, COND_GAZE, MotionDiT, MotionDiTConfig, cfg_combine  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = MotionDiTConfig(width=32, layers=2, heads=2, ff=64, window=12, context=4)


def _randomised(cfg=TINY, seed=0) -> MotionDiT:
    torch.manual_seed(seed)
    model = MotionDiT(cfg)
    with torch.no_grad():  # the output layer starts at zero; give every weight a value
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def test_shapes_and_condition_masks():
    model = _randomised()
    args = list(example_inputs(TINY, batch=4))
    out = model(*args)
    assert out.shape == (4, TINY.window, TINY.motion_dim)
    # dropping audio changes the prediction; changing the audio of a dropped row does not
    args[6] = torch.ones(4, 5)
    full = model(*args)
    args[6][:, COND_AUDIO] = 0
    no_audio = model(*args)
    assert (full - no_audio).abs().max() > 1e-3
    args[2] = torch.randn_like(args[2])
    assert torch.allclose(model(*args), no_audio, atol=1e-6)


def test_cfg_combination():
    a, b, c = (torch.randn(2, 5, 3) for _ in range(3))
    out = cfg_combine(a, b, c, 0.5, 1.0)
    assert torch.allclose(out, 2.5 * a - 0.5 * b - 1.0 * c)
    assert torch.allclose(cfg_combine(a, b, c, 0.0, 0.0), a)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("motion")
    model = _randomised()
    torch.save(model.state_dict(), tmp / "w.pt")
    stats = {"mel_std": [1.0] * 40, "motion_mean": [0.0] * 17, "motion_std": [1.0] * 17}
    stats.update(mel_speech_prior=[-1.5] * 40, mel_speech_offset=[0.4] * 40)  # train/stream_stats.py's entries
    (tmp / "w.json").write_text(json.dumps({"config": TINY.to_dict(), "stats": stats, "fps": 25.0}))
    return model, export_motion(tmp / "w.pt", tmp / "w.json", tmp / "motion_builtin.onnx")


def test_onnx_matches_pytorch(exported):
    from talkrt.runtime.engine import open_engine

    model, path = exported
    engine = open_engine(path)
    for batch in (1, 3):
        args = example_inputs(TINY, batch=batch, seed=batch)
        names = ("motion_noisy", "t", "audio", "prev_motion", "prev_audio", "controls", "cond_mask")
        got = engine.run({n: a.numpy() for n, a in zip(names, args)})["motion"]
        with torch.no_grad():
            want = model(*args).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_sampler_is_deterministic_and_windows_join(exported, speech_path):
    from talkrt.runtime.audio_enc import encode
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.builtin.diffusion_motion import DiffusionMotion
    from talkrt.runtime.motion import MotionControls

    _, path = exported
    sampler = DiffusionMotion(path)
    feats = encode(load_audio(speech_path)[: 16000 * 3], 25.0)  # 75 frames = 7 windows of 12
    a = sampler.generate(feats, MotionControls(seed=3))
    b = sampler.generate(feats, MotionControls(seed=3))
    c = sampler.generate(feats, MotionControls(seed=4))
    assert a.shape == (75, 17)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # guidance variants: gaze given -> three passes per step; the result differs from no gaze
    g = sampler.generate(feats, MotionControls(seed=3, gaze=(0.3, 0.0)))
    assert not np.array_equal(g, a)


@pytest.mark.parametrize("stride", [4, 40])
def test_trained_model_windows_join_without_a_seam(speech_path, stride):
    """With the shipped weights, the step across a window boundary is no larger than the
    steps inside windows (the previous-window context does its job)."""
    from talkrt.runtime.audio_enc import encode
    from talkrt.runtime.audio_io import load_audio
    from talkrt.runtime.builtin.diffusion_motion import DiffusionMotion
    from talkrt.runtime.motion import MOTION_HIGH, MOTION_LOW, MotionControls, MotionPlan

    sampler = DiffusionMotion()
    feats = encode(load_audio(speech_path), 25.0, phones=sampler.wants_phones)
    m = sampler.generate(feats, MotionControls(seed=0), MotionPlan(25.0, stride, 2))
    scaled = (m - MOTION_LOW) / (MOTION_HIGH - MOTION_LOW)
    step = np.abs(np.diff(scaled, axis=0)).mean(1)  # step[i] = change from frame i to i+1
    seams = step[stride - 1::stride]
    inside = np.delete(step, np.arange(stride - 1, len(step), stride))
    assert seams.mean() < 1.5 * inside.mean()


def test_training_loop_runs_a_few_steps(tmp_path):
    sys.path.insert(0, str(ROOT / "train"))
    from train_motion import MotionData, loss_fn

    rng = np.random.default_rng(0)
    lengths = np.array([40, 55, 30])
    np.savez(tmp_path / "train.npz", mel=rng.standard_normal((lengths.sum(), 40)).astype(np.float16),
             motion=rng.random((lengths.sum(), 17)).astype(np.float32), lengths=lengths,
             head=np.ones(3, np.float32), gaze=np.array([[0.1, 0.0], [np.nan, np.nan], [0.0, 0.2]], np.float32),
             emotion=np.array([0, 1, 2]))
    data = MotionData(tmp_path / "train.npz", TINY)
    x0, audio, pm, pa, controls, mask = data.batch(rng, 6)
    assert x0.shape == (6, TINY.window, 17) and pm.shape == (6, TINY.context, 17) and controls.shape == (6, 8)
    assert mask.shape == (6, 5)
    model = MotionDiT(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = data.batch(rng, 6, drop=False)
    first = None
    for _ in range(10):
        loss = loss_fn(model, batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < first


def test_training_data_with_phone_posteriors(tmp_path):
    """Phone log-posteriors follow the mel columns, standardised; mel dropout blanks only the mel."""
    sys.path.insert(0, str(ROOT / "train"))
    from train_motion import MotionData

    rng = np.random.default_rng(0)
    lengths = np.array([40, 55, 30])
    n = int(lengths.sum())
    phones = np.log(rng.dirichlet(np.ones(40), n)).clip(-10, 0).astype(np.float16)
    np.savez(tmp_path / "train.npz", mel=rng.standard_normal((n, 40)).astype(np.float16), phones=phones,
             motion=rng.random((n, 17)).astype(np.float32), lengths=lengths, head=np.ones(3, np.float32),
             gaze=np.full((3, 2), np.nan, np.float32), emotion=np.zeros(3, np.int64))
    cfg = MotionDiTConfig(width=32, layers=1, heads=2, ff=64, window=12, context=4, audio_dim=80)
    data = MotionData(tmp_path / "train.npz", cfg)
    assert data.mel.shape == (n, 80)
    np.testing.assert_allclose(data.mel[:, 40:].mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(data.mel[:, 40:].std(0), 1, atol=1e-2)
    data.mel_dropout = 1.0
    _, audio, _, _, _, _ = data.batch(rng, 4)
    assert float(audio[..., :40].abs().max()) == 0 and float(audio[..., 40:].abs().max()) > 0
    data.mel_dropout = 0.0
    _, audio, _, _, _, _ = data.batch(rng, 4)
    assert float(audio[..., :40].abs().max()) > 0
    # a 40-d model on data with phones ignores them; an 80-d model on data without them is refused
    assert MotionData(tmp_path / "train.npz", TINY).mel.shape == (n, 40)
    np.savez(tmp_path / "old.npz", **{k: v for k, v in np.load(tmp_path / "train.npz").items() if k != "phones"})
    with pytest.raises((SystemExit, KeyError)):
        MotionData(tmp_path / "old.npz", cfg)


def test_bilabials_close_the_lips_in_the_targets():
    """Between open vowels a short p/b/m still shuts the lips (press reaches 1, the opening 0)."""
    sys.path.insert(0, str(ROOT / "train"))
    from targets import mouth_targets

    phones = [("SIL", 0, 0.2), ("AA", 0.2, 0.35), ("M", 0.35, 0.40), ("AA", 0.40, 0.55), ("B", 0.55, 0.58),
              ("IY", 0.58, 0.7), ("P", 0.7, 0.76), ("AE", 0.76, 0.9), ("SIL", 0.9, 1.2)]
    m = mouth_targets(phones, 30, 25.0)
    opening = m[:, 0] * (1 - m[:, 3])
    t = (np.arange(30) + 0.5) / 25.0
    for start, end in ((0.35, 0.40), (0.55, 0.58), (0.7, 0.76)):
        near = np.abs(t - (start + end) / 2) < 0.04
        assert m[near, 3].max() > 0.95 and opening[near].min() < 0.03
    vowels = (t > 0.22) & (t < 0.33)
    assert opening[vowels].max() > 0.4 and m[vowels, 3].max() < 0.3  # the vowel itself stays open
