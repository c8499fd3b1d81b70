"""Fit builtin motion coefficients to talking videos, so that users can train on their own data.

    python train/fit_video.py VIDEO[:AUDIO] [...] --out DIR     # then: train/train_motion.py --data DIR

Per frame: the runtime's face mesh; a 3-D similarity fit of stable points to the clip's neutral
face gives head pitch/yaw/roll, translation and scale; the de-rotated mesh gives jaw opening, lip
spread/round, smile, blinks, brows and gaze by inverting the builtin rig's own scales
(runtime/builtin/rig.py). Lip press is not observable from landmarks and is left at 0; emotion
is recorded as neutral. Audio comes from the video's own track unless a separate file is given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_enc import encode
from talkrt.runtime.audio_io import load_audio
from talkrt.runtime.builtin import landmarks as L
from talkrt.runtime.errors import InputError
from talkrt.runtime.face import FaceAnalyzer
from talkrt.runtime.motion import FIELD, MOTION_FIELDS, clip_motion

STABLE = (10, 151, 9, 6, 168, 1, 33, 263, 133, 362, 127, 356, 234, 454, 4, 197)


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Umeyama: R, s, t with dst ~ s R src + t (3-D)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1, 1, d])
    r = u @ fix @ vt
    s = float((sig * np.diag(fix)).sum() / (a ** 2).sum() * len(src))
    return r, s, md - s * r @ ms


def _euler(r: np.ndarray) -> tuple[float, float, float]:
    """pitch, yaw, roll (deg) with R = Rz(roll) Ry(yaw) Rx(pitch), as the rig composes them."""
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    yaw = np.degrees(-np.arcsin(np.clip(r[2, 0], -1, 1)))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(pitch), float(yaw), float(roll)


def fit_coefficients(meshes: np.ndarray) -> np.ndarray:
    """[T, 478, 3] meshes (image pixels) of one clip -> [T, 17] motion coefficients."""
    t_len = len(meshes)
    stable = list(STABLE)
    ref = meshes[0]
    for _ in range(2):  # neutral = median de-posed face, refined once
        local = []
        for m in meshes:
            r, s, t = _similarity(ref[stable], m[stable])
            local.append(((m - t) @ r) / s)
        local = np.stack(local)
        ref = np.median(local, 0)
    out = np.zeros((t_len, len(MOTION_FIELDS)), np.float32)
    face_w = float(np.ptp(ref[list(L.FACE_OVAL), 0]))
    face_h = float(np.ptp(ref[list(L.FACE_OVAL), 1]))
    mw = float(np.linalg.norm(ref[61, :2] - ref[291, :2]))
    for i, m in enumerate(meshes):
        r, s, t = _similarity(ref[stable], m[stable])
        out[i, FIELD["head_pitch"]], out[i, FIELD["head_yaw"]], out[i, FIELD["head_roll"]] = _euler(r)
        centre = ref[stable].mean(0)
        shift = (s * r @ centre + t - centre)[:2] / face_w
        out[i, FIELD["head_tx"]], out[i, FIELD["head_ty"]] = shift
        out[i, FIELD["head_scale"]] = s - 1.0
    x, y = local[..., 0], local[..., 1]
    gap = np.mean([y[:, lo] - y[:, up] for up, lo in ((13, 14), (82, 87), (312, 317))], 0)
    out[:, FIELD["jaw_open"]] = (gap - np.percentile(gap, 5)) / (0.26 * mw)
    width = np.linalg.norm(local[:, 61, :2] - local[:, 291, :2], axis=1)
    dw = (width - np.median(width)) / mw
    out[:, FIELD["lip_spread"]] = np.maximum(dw, 0) / 0.12
    out[:, FIELD["lip_round"]] = np.maximum(-dw, 0) / 0.16
    corner = (y[:, 61] + y[:, 291]) / 2 - (y[:, 13] + y[:, 14]) / 2
    out[:, FIELD["smile"]] = -(corner - np.median(corner)) / (0.12 * mw)
    for field, (up, lo), (a, b) in (("blink_r", (159, 145), (33, 133)), ("blink_l", (386, 374), (362, 263))):
        opening = (y[:, lo] - y[:, up]) / np.linalg.norm(local[:, a, :2] - local[:, b, :2], axis=1)
        out[:, FIELD[field]] = 1 - opening / max(np.percentile(opening, 90), 1e-6)
    eye_y = (y[:, 159] + y[:, 386]) / 2
    brow = eye_y - (y[:, 105] + y[:, 334]) / 2
    out[:, FIELD["brow_raise"]] = (brow - np.percentile(brow, 10)) / (0.045 * face_h)
    inner = x[:, 336] - x[:, 107]
    out[:, FIELD["brow_furrow"]] = (np.percentile(inner, 90) - inner) / (0.07 * face_w)
    gx, gy = [], []
    for iris, (a, b) in ((468, (33, 133)), (473, (362, 263))):
        eye_w = np.linalg.norm(local[:, a, :2] - local[:, b, :2], axis=1)
        gx.append((x[:, iris] - (x[:, a] + x[:, b]) / 2) / eye_w)
        gy.append((y[:, iris] - (y[:, a] + y[:, b]) / 2) / eye_w)
    gx, gy = np.mean(gx, 0), np.mean(gy, 0)
    out[:, FIELD["gaze_x"]] = (gx - np.median(gx)) / 0.16
    out[:, FIELD["gaze_y"]] = (gy - np.median(gy)) / 0.07
    return clip_motion(out)


def video_meshes(path: Path, analyzer: FaceAnalyzer) -> tuple[np.ndarray, float]:
    """[T, 478, 3] meshes of the largest face in every frame, and the video's frame rate."""
    import av

    meshes = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate)
        for frame in c.decode(stream):
            meshes.append(analyzer.analyze(frame.to_ndarray(format="rgb24"), name=str(path)).points)
    if not meshes:
        raise InputError(path, "video has no frames")
    return np.stack(meshes), fps


def video_record(video: Path, audio: Path | None, analyzer: FaceAnalyzer, fps_out: float = 25.0) -> dict:
    """One training record (the make_data.py format) from a talking video."""
    meshes, fps = video_meshes(video, analyzer)
    motion = fit_coefficients(meshes)
    feats = encode(load_audio(audio or video), fps_out, phones=True)
    t_src = np.arange(len(motion)) / fps
    t_out = np.arange(feats.frames) / fps_out
    motion = np.stack([np.interp(t_out, t_src, motion[:, k]) for k in range(motion.shape[1])], 1)
    head = float(np.clip(np.std(motion[:, FIELD["head_yaw"]]) / 2.0, 0.3, 1.8))
    return {"split": "train", "index": 0, "voice": f"video:{video.name}", "text": "", "mel": feats.mel.astype(np.float16),
            "phones": feats.phones.astype(np.float16), "motion": motion.astype(np.float32), "head": head, "gaze": None, "emotion": 0, "aligned": []}


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_data import save_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", help="VIDEO or VIDEO:AUDIO")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    analyzer = FaceAnalyzer()
    records = []
    for i, pair in enumerate(args.pairs):
        video, _, audio = pair.partition(":")
        rec = video_record(Path(video), Path(audio) if audio else None, analyzer)
        rec["index"] = i
        records.append(rec)
        print(f"{video}: {len(rec['motion'])} frames fitted")
    args.out.mkdir(parents=True, exist_ok=True)
    print(save_split(records, args.out / "train.npz"))


if __name__ == "__main__":
    main()
