"""What `talkrt eval` measures, as plain functions of per-frame series (no detector, no video).

Every length is normalised by the inter-ocular distance (IOD, between the eye centres), so numbers
do not depend on the video's resolution. Each function documents its definition; the tests feed
them synthetic series with known answers.
"""
from __future__ import annotations

import numpy as np

# 68-point layout (iBUG 300-W, what dlib's shape predictor returns)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
RIGHT_EYE = slice(36, 42)  # the subject's right eye, image left
LEFT_EYE = slice(42, 48)
RIGID = [27, 30, 31, 33, 35, 36, 39, 42, 45]  # nose and eye corners: do not move with speech

# A generic head in millimetres (x right, y up, z towards the camera; nose tip at the origin), for the
# RIGID points above: typical adult proportions (biocular width ~90 mm, intercanthal ~30 mm, nose
# projection ~25 mm). Absolute angles are approximate; spreads and changes are what is reported.
HEAD_MODEL_MM = np.array([
    [0.0, 33.0, -22.0],    # 27 nose bridge
    [0.0, 0.0, 0.0],       # 30 nose tip
    [-13.0, -10.0, -18.0],  # 31 right ala
    [0.0, -12.0, -12.0],   # 33 subnasale
    [13.0, -10.0, -18.0],  # 35 left ala
    [-45.0, 35.0, -38.0],  # 36 right eye outer corner
    [-15.0, 33.0, -30.0],  # 39 right eye inner corner
    [15.0, 33.0, -30.0],   # 42 left eye inner corner
    [45.0, 35.0, -38.0],   # 45 left eye outer corner
])

# How far each phone opens the mouth (CMU/ARPAbet phone set, as pocketsphinx names them), a coarse
# articulatory scale: open vowels 1, mid 0.6-0.7, close 0.3-0.4, consonants by their jaw position,
# bilabials 0 (lips shut). The eval's own table, independent of the training targets.
OPENNESS = {
    "AA": 1.0, "AE": 0.9, "AH": 0.7, "AO": 0.9, "AW": 0.85, "AY": 0.85, "EH": 0.65, "ER": 0.4, "EY": 0.55,
    "IH": 0.4, "IY": 0.3, "OW": 0.6, "OY": 0.6, "UH": 0.4, "UW": 0.3,
    "P": 0.0, "B": 0.0, "M": 0.0, "F": 0.1, "V": 0.1, "TH": 0.2, "DH": 0.2, "S": 0.1, "Z": 0.1,
    "SH": 0.2, "ZH": 0.2, "CH": 0.2, "JH": 0.2, "T": 0.2, "D": 0.2, "N": 0.2, "L": 0.3, "K": 0.3,
    "G": 0.3, "NG": 0.25, "R": 0.3, "W": 0.15, "Y": 0.2, "HH": 0.4, "SIL": 0.0,
}
OPEN_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY")
BILABIALS = ("P", "B", "M")
CLOSED_IOD = 0.05  # inner-lip gap (in IOD) at or below which the lips count as meeting

Phones = list[tuple[str, float, float]]  # (ARPAbet phone, start_s, end_s)


def iod(landmarks: np.ndarray) -> np.ndarray:
    """[T] inter-ocular distance in pixels from [T, 68, 2] landmarks."""
    return np.linalg.norm(landmarks[:, RIGHT_EYE].mean(1) - landmarks[:, LEFT_EYE].mean(1), axis=-1)


def aperture(landmarks: np.ndarray) -> np.ndarray:
    """[T] inner-lip opening / IOD: mean distance of the three inner-lip point pairs."""
    gaps = [np.linalg.norm(landmarks[:, a] - landmarks[:, b], axis=-1) for a, b in INNER_LIP_PAIRS]
    return np.mean(gaps, 0) / iod(landmarks)


def mouth_width(landmarks: np.ndarray) -> np.ndarray:
    """[T] outer lip-corner distance / IOD (rounding narrows it, spreading widens it)."""
    return np.linalg.norm(landmarks[:, 48] - landmarks[:, 54], axis=-1) / iod(landmarks)


def eye_aspect(landmarks: np.ndarray) -> np.ndarray:
    """[T] eye aspect ratio (lid opening over eye width), both eyes averaged."""
    def one(e):
        return (np.linalg.norm(e[:, 1] - e[:, 5], axis=-1) + np.linalg.norm(e[:, 2] - e[:, 4], axis=-1)) / (
            2 * np.linalg.norm(e[:, 0] - e[:, 3], axis=-1))
    return (one(landmarks[:, RIGHT_EYE]) + one(landmarks[:, LEFT_EYE])) / 2


def envelope(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int, window_s: float = 0.04) -> np.ndarray:
    """[n_frames] RMS of the audio in a window centred on each video frame's mid-time."""
    audio = np.asarray(audio, np.float64)
    half = max(1, int(window_s * sample_rate / 2))
    out = np.zeros(n_frames)
    for i in range(n_frames):
        c = int((i + 0.5) / fps * sample_rate)
        seg = audio[max(0, c - half):c + half]
        out[i] = np.sqrt(np.mean(seg ** 2)) if len(seg) else 0.0
    return out


def best_lag_correlation(video: np.ndarray, reference: np.ndarray, max_lag: int = 5) -> dict:
    """Pearson r of `video` against `reference` at every lag in +-max_lag frames.

    lag > 0 means the video follows the reference by `lag` frames. Returns r at lag 0, the best r and
    its lag. Both series are compared over the same frames (the overlap after shifting)."""
    n = min(len(video), len(reference))
    v, r = np.asarray(video[:n], float), np.asarray(reference[:n], float)
    scores = {}
    for lag in range(-max_lag, max_lag + 1):
        a, b = (v[lag:], r[:n - lag]) if lag >= 0 else (v[:n + lag], r[-lag:])
        if len(a) < 4 or a.std() < 1e-12 or b.std() < 1e-12:
            scores[lag] = float("nan")
            continue
        scores[lag] = float(np.corrcoef(a, b)[0, 1])
    valid = {k: s for k, s in scores.items() if np.isfinite(s)}
    if not valid:
        return {"r": float("nan"), "r_best": float("nan"), "lag": 0}
    lag = max(valid, key=valid.get)
    return {"r": scores[0], "r_best": valid[lag], "lag": int(lag)}


def phone_frames(phones: Phones, fps: float, n_frames: int, names: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(phone, first, last) frame ranges of the phones in `names` (frames whose mid-time they cover)."""
    out = []
    for name, start, end in phones:
        if name.upper() not in names:
            continue
        first = int(np.ceil(start * fps - 0.5))
        last = min(int(np.floor(end * fps - 0.5)), n_frames - 1)
        if last < first:  # shorter than a frame: the frame nearest its middle
            first = last = min(int((start + end) / 2 * fps), n_frames - 1)
        if 0 <= first < n_frames:
            out.append((name.upper(), first, last))
    return out


def openness_target(phones: Phones, fps: float, n_frames: int, smooth_s: float = 0.06) -> np.ndarray:
    """[n_frames] phone openness (OPENNESS) sampled at frame mid-times, smoothed by a short Hann
    window (the mouth moves between phones, it does not jump)."""
    t = (np.arange(n_frames) + 0.5) / fps
    target = np.zeros(n_frames)
    for name, start, end in phones:
        target[(t >= start) & (t < end)] = OPENNESS.get(name.upper(), 0.2)
    k = max(1, int(round(smooth_s * fps)) * 2 + 1)
    w = np.hanning(k + 2)[1:-1]
    return np.convolve(np.pad(target, k // 2, mode="edge"), w / w.sum(), mode="valid")


def closure_rate(ap: np.ndarray, phones: Phones, fps: float, closed: float = CLOSED_IOD, slack: int = 1) -> dict:
    """Share of bilabial phones (p, b, m) during which the lips meet: the smallest aperture within
    the phone's frames (+-`slack` frames, for the alignment's precision) is <= `closed`."""
    spans = phone_frames(phones, fps, len(ap), BILABIALS)
    hits = [float(ap[max(0, a - slack):b + slack + 1].min()) <= closed for _, a, b in spans]
    return {"pbm_closed": float(np.mean(hits)) if hits else float("nan"), "pbm_count": len(hits)}


def open_vowel_aperture(ap: np.ndarray, phones: Phones, fps: float) -> dict:
    """Median over open-vowel phones (AA AE AH AO AW AY) of the widest aperture within each."""
    spans = phone_frames(phones, fps, len(ap), OPEN_VOWELS)
    peaks = [float(ap[a:b + 1].max()) for _, a, b in spans]
    return {"open_vowel_aperture": float(np.median(peaks)) if peaks else float("nan"), "open_vowel_count": len(peaks)}


def speech_activity(env: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(silent, voiced) boolean [T] from the envelope: voiced within 25 dB of the loud frames; silent
    more than 40 dB below them, at least 0.2 s long and 0.1 s away from any voiced frame."""
    db = 20 * np.log10(np.maximum(env, 1e-6))
    peak = np.percentile(db, 95)
    voiced = db > peak - 25
    quiet = db < peak - 40
    guard = max(1, int(round(0.1 * fps)))
    near = np.convolve(voiced.astype(float), np.ones(2 * guard + 1), mode="same") > 0
    silent = quiet & ~near
    keep = np.zeros_like(silent)  # runs of at least 0.2 s
    i, n, need = 0, len(silent), max(1, int(round(0.2 * fps)))
    while i < n:
        if silent[i]:
            j = i
            while j < n and silent[j]:
                j += 1
            if j - i >= need:
                keep[i:j] = True
            i = j
        else:
            i += 1
    return keep, voiced


def rest_level(photo_ap: float, ap: np.ndarray) -> float:
    """The aperture a mouth rests at in a video of this photo. A photo with parted lips (a smile
    with teeth) rests at its own opening, however often the video presses the lips shut; a photo
    with closed lips rests shut, at the video's own closed level where dlib reads that lower."""
    if photo_ap > CLOSED_IOD or not len(ap):
        return float(photo_ap)
    return float(min(photo_ap, np.percentile(ap, 5)))


def silence_ratio(ap: np.ndarray, env: np.ndarray, fps: float, rest: float) -> dict:
    """Mean aperture above the rest aperture (the photo's, or 0) in silence over the same in voiced
    speech: 0 = the mouth rests shut in pauses, 1 = it moves as much as in speech."""
    silent, voiced = speech_activity(env, fps)
    out = {"silent_frames": int(silent.sum())}
    if not silent.any() or not voiced.any():
        out["silence_ratio"] = float("nan")
        return out
    above = np.maximum(ap - rest, 0)
    out["silence_ratio"] = float(above[silent].mean() / max(above[voiced].mean(), 1e-9))
    return out


BLINK_DIP = 0.7  # a blink: the eye aspect below this share of its local baseline
BLINK_BASELINE_S = 0.5  # the baseline: the median over this long either side


def blinks(ear: np.ndarray, fps: float) -> dict:
    """Blinks per minute: dips of the eye aspect ratio below BLINK_DIP of its running median over
    +-BLINK_BASELINE_S (a dip = one blink; dips one frame apart are one blink). The baseline is
    local because dlib reads closed eyes behind glasses as a shallow dip (to 0.55-0.8 of open), and
    the open level itself drifts with expression and head pitch; a 4-frame blink barely moves a
    25-frame median, a slow squint or nod moves it along."""
    ear = np.asarray(ear, np.float64)
    n = len(ear)
    half = max(1, int(round(BLINK_BASELINE_S * fps)))
    base = np.array([np.median(ear[max(0, i - half):i + half + 1]) for i in range(n)])
    closed = ear < BLINK_DIP * base
    if n > 2:  # bridge one open frame inside a dip (landmark noise)
        closed[1:-1] |= closed[:-2] & closed[2:]
    count = int((np.diff(closed.astype(int)) == 1).sum() + (1 if n and closed[0] else 0))
    minutes = n / fps / 60
    return {"blinks": count, "blinks_per_min": count / minutes if minutes > 0 else float("nan")}


def head_pose(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """[T, 3] (pitch, yaw, roll) in degrees from the rigid landmarks and HEAD_MODEL_MM (PnP with a
    pinhole camera whose focal length is the frame width)."""
    import cv2

    cam = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    model = HEAD_MODEL_MM * [1, -1, -1]  # to OpenCV's camera axes (y down, z away)
    out = np.zeros((len(landmarks), 3))
    rvec = tvec = None
    for i, pts in enumerate(landmarks):
        img = pts[RIGID].astype(np.float64)
        if rvec is None:
            ok, rvec, tvec = cv2.solvePnP(model, img, cam, None, flags=cv2.SOLVEPNP_EPNP)
        ok, rvec, tvec = cv2.solvePnP(model, img, cam, None, rvec, tvec, useExtrinsicGuess=True,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
        rot, _ = cv2.Rodrigues(rvec)
        # intrinsic x (pitch), y (yaw), z (roll) of R = Rz Ry Rx
        pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
        yaw = np.degrees(np.arcsin(-np.clip(rot[2, 0], -1, 1)))
        roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
        out[i] = (pitch, yaw, roll)
    return out


def pose_stats(pose: np.ndarray) -> dict:
    """Head-pose spread (std over time, degrees, the largest of pitch/yaw/roll and each) and the mean
    absolute frame-to-frame change."""
    std = pose.std(0) if len(pose) else np.zeros(3)
    step = np.abs(np.diff(pose, axis=0)).mean(0) if len(pose) > 1 else np.zeros(3)
    # the landmarks' own frame-to-frame noise reads as ~0.5-1 degree of spread on a still head; a
    # 9-frame running median (0.36 s at 25 fps) removes most of it and keeps head movements
    smooth = np.stack([_running_median(pose[:, k], 9) for k in range(3)], 1) if len(pose) else pose
    return {"head_std_deg": float(std.max()), "head_pitch_std": float(std[0]), "head_yaw_std": float(std[1]),
            "head_roll_std": float(std[2]), "head_step_deg": float(step.max()),
            "head_std_smoothed_deg": float(smooth.std(0).max()) if len(pose) else 0.0}


def _running_median(x: np.ndarray, k: int) -> np.ndarray:
    h = k // 2
    padded = np.pad(x, h, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, k), -1)


def landmark_jitter(landmarks: np.ndarray) -> float:
    """Mean magnitude of the second difference of the rigid landmarks, in IOD (0 for a still face
    or constant motion; tracker noise and shaking raise it)."""
    if len(landmarks) < 3:
        return float("nan")
    rigid = landmarks[:, RIGID]
    acc = rigid[2:] - 2 * rigid[1:-1] + rigid[:-2]
    return float((np.linalg.norm(acc, axis=-1).mean(1) / iod(landmarks[1:-1])).mean())


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian (a standard focus measure) of a grey image."""
    import cv2

    return float(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=1).var())


def face_box(points: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the inner face: brows to mouth, between the eye outer corners."""
    x0, y0 = points[17:68].min(0)
    x1, y1 = points[17:68].max(0)
    h, w = shape
    return max(int(x0), 0), max(int(y0), 0), min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)


def border_band(shape: tuple[int, int], share: float = 0.08) -> np.ndarray:
    """[H, W] bool: the outer `share` of each side of the frame (background in a portrait)."""
    h, w = shape
    band = np.ones((h, w), bool)
    bh, bw = int(share * h), int(share * w)
    band[bh:h - bh, bw:w - bw] = False
    return band
