from __future__ import annotations

import numpy as np
import pytest

from talkrt.runtime.audio_enc import encode
from talkrt.runtime.audio_io import load_audio
from talkrt.runtime.errors import OptionError
from talkrt.runtime.motion import FIELD, MOTION_FIELDS, MOTION_HIGH, MOTION_LOW, MotionControls, open_motion


@pytest.fixture(scope="module")
def feats(speech_path):
    return encode(load_audio(speech_path), 25.0, phones=True)  # the trained model hears phone posteriors too


def test_shape_range_and_determinism(feats):
    model = open_motion("heuristic")
    a = model.generate(feats, MotionControls(seed=7))
    b = model.generate(feats, MotionControls(seed=7))
    c = model.generate(feats, MotionControls(seed=8))
    assert a.shape == (feats.frames, len(MOTION_FIELDS)) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a >= MOTION_LOW).all() and (a <= MOTION_HIGH).all()


def test_mouth_follows_the_voice(feats):
    m = open_motion("heuristic").generate(feats, MotionControls())
    jaw = m[:, FIELD["jaw_open"]]
    assert np.corrcoef(jaw, feats.rms)[0, 1] > 0.8
    silent = feats.rms_db < -60
    assert silent.sum() > 10
    assert jaw[silent].mean() < 0.1 * jaw[~silent].mean() and jaw[~silent].mean() > 0.2


def test_blinks_at_a_natural_rate():
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 * 120) * 1e-4).astype(np.float32)  # two minutes of near-silence
    f = encode(audio, 25.0)
    m = open_motion("heuristic").generate(f, MotionControls(seed=1))
    closed = m[:, FIELD["blink_r"]] > 0.5
    blinks = int((np.diff(closed.astype(int)) == 1).sum())
    assert 8 * 2 <= blinks <= 30 * 2
    assert np.abs(m[:, FIELD["head_pitch"]]).max() > 0.1  # idle, not frozen


def test_controls(feats):
    model = open_motion("heuristic")
    still = model.generate(feats, MotionControls(head_motion=0.0))
    assert np.abs(still[:, [FIELD[k] for k in ("head_yaw", "head_pitch", "head_roll")]]).max() == 0
    fixed = model.generate(feats, MotionControls(gaze=(0.3, -0.2)))
    assert np.allclose(fixed[:, FIELD["gaze_x"]], 0.3) and np.allclose(fixed[:, FIELD["gaze_y"]], -0.2)
    happy = model.generate(feats, MotionControls(emotion="happy"))
    assert happy[:, FIELD["smile"]].mean() > 0.4
    with pytest.raises(OptionError):
        MotionControls(head_motion=-1)
    with pytest.raises(OptionError):
        open_motion("nope")


def test_trained_model_head_motion_control(feats):
    """--head-motion 0 is a still head, 2 visibly more than 1 (the trained model)."""
    model = open_motion("diffusion")
    head = [FIELD[k] for k in ("head_pitch", "head_yaw", "head_roll")]
    runs = {hm: model.generate(feats, MotionControls(head_motion=hm, steps=4))[:, head] for hm in (0.0, 1.0, 2.0)}
    assert np.abs(runs[0.0]).max() == 0
    assert (runs[2.0].std(0) > 1.3 * runs[1.0].std(0)).sum() >= 2
    spread = {hm: float(np.linalg.norm(r.std(0))) for hm, r in runs.items()}
    assert spread[2.0] > 1.6 * spread[1.0]  # about proportional to the level (measured ~2x)
