"""`talkrt eval`: its measures on synthetic cases with known answers, then the whole command."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkrt.runtime.evaluate import metrics as M

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "examples" / "portrait.jpg"
SPEECH = ROOT / "examples" / "speech.wav"
REAL = ROOT.parent / "shared" / "real-speech" / "goforward.wav"  # a real voice; transcript "go forward ten meters"


def test_best_lag_finds_a_known_delay():
    rng = np.random.default_rng(0)
    ref = np.convolve(rng.random(200), np.ones(5) / 5, mode="same")
    video = np.concatenate([[ref[0]] * 2, ref[:-2]])  # the video follows the audio by 2 frames
    res = M.best_lag_correlation(video, ref)
    assert res["lag"] == 2 and res["r_best"] > 0.999 and res["r"] < 0.9
    assert M.best_lag_correlation(-video, ref)["r_best"] < 0  # anti-correlated stays negative
    assert np.isnan(M.best_lag_correlation(np.ones(50), ref)["r"])  # a mouth that never moves has no r


def test_closure_open_vowels_and_targets():
    fps = 25.0
    ap = np.full(100, 0.2)
    ap[10:13] = 0.01  # P at 0.40-0.52 s: shut
    ap[30:33] = 0.15  # B at 1.20-1.32 s: not shut
    ap[50:52] = 0.03  # M at 2.00-2.08 s: shut (under CLOSED_IOD)
    ap[70:74] = [0.2, 0.35, 0.3, 0.2]  # AA at 2.80-2.96 s: peak 0.35
    ap[80:83] = [0.1, 0.25, 0.1]  # AE at 3.20-3.32 s: peak 0.25
    phones = [("P", 0.40, 0.52), ("B", 1.20, 1.32), ("M", 2.00, 2.08), ("AA", 2.80, 2.96), ("AE", 3.20, 3.32),
              ("IY", 3.5, 3.6)]
    c = M.closure_rate(ap, phones, fps, slack=0)
    assert c["pbm_count"] == 3 and c["pbm_closed"] == pytest.approx(2 / 3)
    o = M.open_vowel_aperture(ap, phones, fps)
    assert o["open_vowel_count"] == 2 and o["open_vowel_aperture"] == pytest.approx(0.30)
    target = M.openness_target(phones, fps, 100)
    assert target[72] > 0.8 and target[11] < 0.1 and target[0] == 0
    # a phone shorter than a frame still gets its nearest frame
    assert M.phone_frames([("P", 0.41, 0.43)], fps, 100, M.BILABIALS) == [("P", 10, 10)]


def test_silence_ratio_and_activity():
    fps = 25.0
    env = np.concatenate([np.full(25, 1e-5), np.full(50, 0.1), np.full(25, 1e-5)])
    silent, voiced = M.speech_activity(env, fps)
    assert voiced[25:75].all() and silent[:20].all() and not silent[23:77].any() and silent[77:].all()
    ap_shut = np.where(env > 0.01, 0.3, 0.0)
    assert M.silence_ratio(ap_shut, env, fps, rest=0.0)["silence_ratio"] == pytest.approx(0.0)
    ap_moving = np.full(100, 0.3)
    assert M.silence_ratio(ap_moving, env, fps, rest=0.0)["silence_ratio"] == pytest.approx(1.0)
    # no silence of 0.2 s: undefined, not zero
    assert np.isnan(M.silence_ratio(ap_moving, np.full(100, 0.1), fps, rest=0.0)["silence_ratio"])


def test_a_smile_rests_at_its_own_opening():
    fps = 25.0
    env = np.r_[np.zeros(25), np.full(50, 0.5), np.zeros(25)]  # 1 s pause, 2 s speech, 1 s pause
    smile = 0.15
    ap = np.full(100, smile)  # the pauses rest at the photo's smile
    ap[25:75] = smile + 0.1 * np.abs(np.sin(np.arange(50) / 3))  # speech opens wider ...
    ap[30:33] = ap[50:53] = 0.01  # ... and presses the lips shut on p/b/m
    rest = M.rest_level(smile, ap)
    assert rest == pytest.approx(smile)
    assert M.silence_ratio(ap, env, fps, rest)["silence_ratio"] == pytest.approx(0.0)
    # a closed-lip photo rests at the video's closed level when dlib reads that lower than the photo
    assert M.rest_level(0.03, np.r_[np.full(50, 0.01), np.full(50, 0.2)]) == pytest.approx(0.01)


def test_blinks_counted_from_eye_aspect_dips():
    ear = np.full(1500, 0.3)  # one minute at 25 fps
    for start in (100, 600, 1200):
        ear[start:start + 4] = [0.2, 0.08, 0.1, 0.2]
    b = M.blinks(ear, 25.0)
    assert b["blinks"] == 3 and b["blinks_per_min"] == pytest.approx(3.0)


def test_blinks_behind_glasses_and_drifting_eyes():
    rng = np.random.default_rng(0)
    t = np.arange(1500) / 25.0
    # the open level drifts (squint, nods: 0.26-0.34 over seconds) with landmark noise; dlib reads
    # closed eyes behind glasses as a shallow dip, to 0.55-0.65 of open, with an open-looking frame
    # in the middle of one of them
    open_ = 0.30 + 0.04 * np.sin(2 * np.pi * t / 7.0)
    ear = open_ + rng.normal(0, 0.006, len(t))
    starts = (60, 300, 520, 800, 1010, 1330)
    for start in starts:
        ear[start:start + 4] = open_[start:start + 4] * np.array([0.8, 0.6, 0.55, 0.65])
    ear[521] = open_[521] * 0.8  # the noisy frame inside a dip
    assert M.blinks(ear, 25.0)["blinks"] == len(starts)
    # the drift and the noise alone are no blinks
    assert M.blinks(open_ + rng.normal(0, 0.006, len(t)), 25.0)["blinks"] == 0
    # eyes shut for 2 s are not a stream of blinks: at most one
    long = np.full(500, 0.3)
    long[200:250] = 0.08
    assert M.blinks(long, 25.0)["blinks"] <= 1


def _project(pitch, yaw, roll, width=640, height=480, dist_mm=600.0):
    rot = cv2.Rodrigues(np.zeros(3))[0]
    rx, ry, rz = np.radians([pitch, yaw, roll])
    Rx = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    Ry = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    Rz = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    rot = Rz @ Ry @ Rx
    cam = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    model = M.HEAD_MODEL_MM * [1, -1, -1]
    pts, _ = cv2.projectPoints(model, cv2.Rodrigues(rot)[0], np.array([0, 0, dist_mm]), cam, None)
    lm = np.zeros((68, 2))
    lm[M.RIGID] = pts[:, 0]
    return lm


def test_head_pose_recovers_known_angles_and_stats():
    angles = [(0, 0, 0), (-5, 10, 3), (8, -12, -4)]
    lm = np.array([_project(*a) for a in angles])
    pose = M.head_pose(lm, 640, 480)
    np.testing.assert_allclose(pose, angles, atol=0.3)
    still = M.pose_stats(np.zeros((50, 3)))
    assert still["head_std_deg"] == 0 and still["head_step_deg"] == 0
    swing = M.pose_stats(np.stack([np.zeros(100), 3 * np.sin(np.arange(100) / 5), np.zeros(100)], 1))
    assert swing["head_yaw_std"] == pytest.approx(3 / np.sqrt(2), rel=0.05)
    assert swing["head_std_smoothed_deg"] == pytest.approx(swing["head_yaw_std"], rel=0.1)  # slow motion stays
    noisy = M.pose_stats(np.random.default_rng(0).normal(0, 1.0, (200, 3)))
    assert noisy["head_std_smoothed_deg"] < 0.5 * noisy["head_std_deg"]  # frame noise mostly goes


def test_jitter_aperture_width_eyes_on_synthetic_landmarks():
    base = np.zeros((68, 2))
    base[36:42] = [[0, 0], [1, -1], [2, -1], [3, 0], [2, 1], [1, 1]]
    base[42:48] = base[36:42] + [10, 0]  # eye centres 10 px apart: IOD 10
    base[48], base[54] = [2, 20], [11, 20]
    base[61:64] = [[5, 19], [6, 19], [7, 19]]
    base[65:68] = [[7, 21], [6, 21], [5, 21]]  # inner lips 2 px apart
    base[27:36] = np.arange(9)[:, None] * [0.3, 1.0] + [5, 5]
    assert M.aperture(base[None])[0] == pytest.approx(0.2)
    assert M.mouth_width(base[None])[0] == pytest.approx(0.9)
    assert M.eye_aspect(base[None])[0] == pytest.approx(2 / 3)
    moving = np.array([base + [0.5 * t, 0] for t in range(20)])  # constant velocity: no jitter
    assert M.landmark_jitter(moving) == pytest.approx(0.0, abs=1e-9)
    shaky = moving + np.random.default_rng(1).normal(0, 0.5, moving.shape)
    assert M.landmark_jitter(shaky) > 0.05


def test_sharpness_measure_orders_blur():
    rng = np.random.default_rng(2)
    img = (rng.random((64, 64)) * 255).astype(np.uint8)
    assert M.laplacian_variance(cv2.GaussianBlur(img, (5, 5), 1.5)) < 0.2 * M.laplacian_variance(img)


# ---- the whole command, with dlib ----------------------------------------------------------------

dlib = pytest.importorskip("dlib")


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    from talkrt.runtime.video_io import Y4mWriter

    h, w = frames[0].shape[:2]
    with Y4mWriter(path, w, h, fps) as writer:
        for fr in frames:
            writer.write(fr)


@pytest.fixture(scope="module")
def photo_640(tmp_path_factory):
    from talkrt.runtime.image_io import load_image

    small = load_image(PORTRAIT)
    path = tmp_path_factory.mktemp("eval") / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return path, small


def test_still_photo_video_scores_as_still(photo_640, tmp_path):
    from talkrt.runtime.evaluate.run import EvalOptions, evaluate

    path, small = photo_640
    video = tmp_path / "still.y4m"
    _write_video(video, [small] * 30)
    res = evaluate(video, path, SPEECH, text=None, out_dir=tmp_path / "out", options=EvalOptions(identity_every=10))
    assert res["frames"] == 30 and res["identity_max"] < 0.05
    assert res["head_std_deg"] < 0.05 and res["landmark_jitter_iod"] < 1e-6
    assert res["background_change_255"] == 0 and res["background_vs_photo_255"] < 1.5  # y4m is 4:2:0
    assert 0.8 < res["face_sharpness_vs_photo"] < 1.1
    assert res["blinks"] == 0
    assert np.isnan(res["lipsync_envelope"]["r"]) or abs(res["lipsync_envelope"]["r"]) < 0.3
    saved = json.loads((tmp_path / "out" / "still.json").read_text())
    assert saved["frames"] == 30
    assert (tmp_path / "out" / "still_sheet.png").stat().st_size > 10000
    assert (tmp_path / "out" / "still_report.png").stat().st_size > 10000


def test_blur_and_another_face_are_caught(photo_640, tmp_path):
    from talkrt.runtime.evaluate.run import EvalOptions, evaluate

    path, small = photo_640
    blurred = cv2.GaussianBlur(small, (0, 0), 2.0)
    video = tmp_path / "blur.y4m"
    _write_video(video, [blurred] * 10)
    res = evaluate(video, path, SPEECH, options=EvalOptions(report=False))
    assert res["face_sharpness_vs_photo"] < 0.4
    cat = tmp_path / "clouds.png"  # a picture without a face
    noise = np.random.default_rng(3).random((96, 96, 3)).astype(np.float32) * 255
    cv2.imwrite(str(cat), cv2.resize(cv2.GaussianBlur(noise, (0, 0), 3), (384, 384)).astype(np.uint8))
    from talkrt.runtime.errors import InputError

    with pytest.raises(InputError, match="no face"):
        evaluate(video, cat, SPEECH)


def test_cli_on_a_rendered_clip_with_transcript_and_batch(tmp_path, capsys):
    from talkrt.runtime.cli import main
    from talkrt.runtime.session import SessionOptions, generate

    pytest.importorskip("pocketsphinx")
    clip = tmp_path / "clips" / "speech.mp4"
    clip.parent.mkdir()
    if not REAL.is_file():
        pytest.skip("shared/real-speech is not beside the checkout")
    generate(str(PORTRAIT), str(REAL), str(clip), SessionOptions(max_size=640))
    rc = main(["eval", str(clip), "--portrait", str(PORTRAIT), "--audio", str(REAL), "-o", str(tmp_path / "o"),
               "--text", "Go forward, ten meters."])
    assert rc == 0
    res = json.loads((tmp_path / "o" / "speech.json").read_text())
    assert res["phones_source"] == "transcript" and res["phone_count"] >= 12 and res["pbm_count"] == 1
    assert res["lipsync_envelope"]["r_best"] > 0.3  # the mouth follows the speech
    assert res["identity_max"] < 0.6 and res["face_detected_share"] > 0.9
    assert "env r" in capsys.readouterr().out
    # batch: a sidecar names the inputs
    (clip.parent / "speech.inputs.json").write_text(json.dumps({"portrait": str(PORTRAIT), "audio": str(REAL)}))
    assert main(["eval", str(clip.parent), "--no-report", "--identity-every", "25"]) == 0
    assert json.loads((clip.parent / "eval" / "speech.json").read_text())["frames"] == res["frames"]


def test_cli_bad_inputs_are_one_line(tmp_path, capsys):
    from talkrt.runtime.cli import main

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    cases = [
        (["eval", str(junk), "--portrait", str(PORTRAIT), "--audio", str(SPEECH)], "not a video"),
        (["eval", str(tmp_path / "missing.mp4"), "--portrait", str(PORTRAIT), "--audio", str(SPEECH)], "no such file"),
        (["eval", str(junk)], "--portrait/--audio"),
        (["eval", str(tmp_path), "--portrait", str(PORTRAIT)], "--audio"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_rest_reference_is_the_photo_as_a_video_shows_it():
    # frames of the untouched photo, each with the +-1 grey-level noise an encoder adds, are all at
    # rest: measured against the pristine photo they read as an open mouth, against the reference not
    from talkrt.runtime.evaluate.face68 import Face68
    from talkrt.runtime.evaluate.run import rest_aperture
    from talkrt.runtime.image_io import load_image

    photo = load_image(PORTRAIT)
    faces = Face68()
    face = faces.find(photo, "photo")
    pristine = float(M.aperture(face.landmarks[None])[0])
    rest = rest_aperture(faces, photo, face)
    assert rest == rest_aperture(faces, photo, face)  # seeded
    frames = [np.clip(photo.astype(np.int16) + np.random.default_rng([s, 5]).integers(-1, 2, photo.shape), 0, 255)
              .astype(np.uint8) for s in range(12)]
    ap = np.array([M.aperture(faces.find(f, "frame").landmarks[None])[0] for f in frames])
    above_pristine = np.maximum(ap - pristine, 0).mean()
    above_rest = np.maximum(ap - rest, 0).mean()
    assert above_pristine > 0.005  # the bias this corrects
    assert above_rest < 0.5 * above_pristine
