"""Motion targets for synthetic speech: what the face should do, by documented rules.

Mouth: phone timings (forced alignment) -> a viseme table -> coarticulation by dominance
functions (Cohen & Massaro): every phone pulls each mouth parameter towards its target with a
strength that decays exponentially away from the phone; p/b/m press the lips shut; the jaw opens
wider the louder the frame (x 0.35 at 35 dB below the utterance's loud vowels, x 1 at them).

Head, brows, blinks, gaze: there is no captured motion here, so these follow a generative rule set
tied to prosody (stressed vowels nod the head and, on a pitch peak, raise the brows; pauses invite
blinks; slow random drift otherwise), scaled by the head-intensity control, with the gaze and
emotion controls applied as given. train/README.md says this plainly.
"""
from __future__ import annotations

import numpy as np

from talkrt.runtime.motion import EMOTIONS, FIELD, MOTION_FIELDS, clip_motion

# phone -> (jaw_open, lip_spread, lip_round, lip_press), dominance, decay rate (1/s)
VISEMES: dict[str, tuple[tuple[float, float, float, float], float, float]] = {
    "AA": ((0.85, 0.15, 0.0, 0.0), 0.8, 12), "AE": ((0.75, 0.45, 0.0, 0.0), 0.8, 12),
    "AH": ((0.55, 0.15, 0.0, 0.0), 0.6, 14), "AO": ((0.7, 0.0, 0.5, 0.0), 0.8, 12),
    "AW": ((0.65, 0.05, 0.45, 0.0), 0.8, 12), "AY": ((0.7, 0.35, 0.0, 0.0), 0.8, 12),
    "EH": ((0.55, 0.5, 0.0, 0.0), 0.7, 13), "ER": ((0.35, 0.0, 0.45, 0.0), 0.7, 13),
    "EY": ((0.45, 0.6, 0.0, 0.0), 0.7, 13), "IH": ((0.35, 0.6, 0.0, 0.0), 0.6, 14),
    "IY": ((0.25, 0.9, 0.0, 0.0), 0.7, 13), "OW": ((0.5, 0.0, 0.8, 0.0), 0.8, 12),
    "OY": ((0.5, 0.15, 0.55, 0.0), 0.8, 12), "UH": ((0.35, 0.0, 0.6, 0.0), 0.7, 13),
    "UW": ((0.25, 0.0, 1.0, 0.0), 0.8, 12),
    "B": ((0.03, 0.0, 0.0, 1.0), 1.0, 30), "P": ((0.03, 0.0, 0.0, 1.0), 1.0, 30),
    "M": ((0.03, 0.0, 0.0, 1.0), 1.0, 30), "F": ((0.12, 0.2, 0.0, 0.35), 0.9, 25),
    "V": ((0.12, 0.2, 0.0, 0.35), 0.9, 25), "TH": ((0.2, 0.3, 0.0, 0.0), 0.5, 20),
    "DH": ((0.2, 0.3, 0.0, 0.0), 0.4, 20), "S": ((0.12, 0.6, 0.0, 0.0), 0.6, 20),
    "Z": ((0.12, 0.6, 0.0, 0.0), 0.5, 20), "SH": ((0.18, 0.0, 0.6, 0.0), 0.7, 18),
    "ZH": ((0.18, 0.0, 0.6, 0.0), 0.7, 18), "CH": ((0.18, 0.0, 0.6, 0.0), 0.7, 18),
    "JH": ((0.18, 0.0, 0.6, 0.0), 0.7, 18), "T": ((0.22, 0.3, 0.0, 0.0), 0.3, 22),
    "D": ((0.22, 0.3, 0.0, 0.0), 0.3, 22), "N": ((0.22, 0.3, 0.0, 0.0), 0.3, 22),
    "L": ((0.3, 0.2, 0.0, 0.0), 0.3, 20), "K": ((0.3, 0.1, 0.0, 0.0), 0.25, 22),
    "G": ((0.3, 0.1, 0.0, 0.0), 0.25, 22), "NG": ((0.25, 0.1, 0.0, 0.0), 0.25, 22),
    "R": ((0.25, 0.0, 0.5, 0.0), 0.6, 18), "W": ((0.15, 0.0, 1.0, 0.0), 0.9, 18),
    "Y": ((0.2, 0.6, 0.0, 0.0), 0.5, 18), "HH": ((0.4, 0.1, 0.0, 0.0), 0.2, 16),
    "SIL": ((0.0, 0.0, 0.0, 0.0), 0.7, 8),
}
VOWELS = {p for p in VISEMES if p[0] in "AEIOU"}
MOUTH = ("jaw_open", "lip_spread", "lip_round", "lip_press")


def ou_noise(rng: np.random.Generator, n: int, fps: float, tau_s: float, sigma: float) -> np.ndarray:
    """Ornstein-Uhlenbeck noise: smooth random drift with time constant tau and std sigma."""
    from scipy.signal import lfilter

    a = np.exp(-1.0 / (tau_s * fps))
    noise = rng.standard_normal(n) * sigma * np.sqrt(1 - a * a)
    x0 = rng.standard_normal() * sigma
    out, _ = lfilter([1.0], [1.0, -a], noise, zi=[a * x0])
    return out


BILABIALS = ("P", "B", "M")
CLOSURE_RAMP_S = 0.05  # the lips meet this long before a bilabial and part this long after it


def mouth_targets(phones: list[tuple[str, float, float]], n_frames: int, fps: float) -> np.ndarray:
    """[T, 4] mouth parameters from (phone, start_s, end_s) by dominance-weighted coarticulation.

    Lip press is the exception: blended with its neighbours a short p/b/m would only half-close
    (press ~0.45 between two vowels), but the lips of a real speaker always meet for one. So press
    is at least 1 throughout a bilabial, with a raised-cosine ramp of CLOSURE_RAMP_S either side."""
    t = (np.arange(n_frames) + 0.5) / fps
    num = np.zeros((n_frames, 4))
    den = np.full((n_frames, 1), 1e-6)
    closure = np.zeros(n_frames)
    for name, start, end in phones:
        target, alpha, theta = VISEMES.get(name.upper(), VISEMES["SIL"])
        dist = np.maximum(np.maximum(start - t, t - end), 0.0)  # 0 inside the phone
        dom = alpha * np.exp(-theta * dist)[:, None]
        num += dom * np.array(target)
        den += dom
        if name.upper() in BILABIALS:
            mid = (start + end) / 2  # a phone shorter than a frame still closes the nearest frame
            dist = np.minimum(dist, np.maximum(np.abs(t - mid) - 0.5 / fps, 0.0))
            closure = np.maximum(closure, 0.5 * (1 + np.cos(np.pi * np.minimum(dist / CLOSURE_RAMP_S, 1.0))))
    out = num / den
    out[:, 3] = np.maximum(out[:, 3], closure)
    return out


def _bump(n, fps, at_s, width_s):
    """Raised-cosine bump of peak 1 centred at at_s."""
    t = (np.arange(n) + 0.5) / fps
    x = np.clip((t - at_s) / width_s, -1, 1)
    return 0.5 * (1 + np.cos(np.pi * x))


def motion_targets(phones: list[tuple[str, float, float]], rms_db: np.ndarray, f0_hz: np.ndarray, fps: float,
                   rng: np.random.Generator, head: float, gaze: tuple[float, float] | None, emotion: str) -> np.ndarray:
    """[T, 17] motion for one utterance (see module docstring for the rules)."""
    n = len(rms_db)
    m = np.zeros((n, len(MOTION_FIELDS)))
    mouth = mouth_targets(phones, n, fps)
    # louder speech opens the jaw wider: scale the viseme's jaw by the frame's level (0.35 .. 1)
    db = np.asarray(rms_db, np.float64)
    voiced_db = db[db > -60]
    peak = np.percentile(voiced_db, 95) if len(voiced_db) else 0.0
    level = np.clip((db - (peak - 35.0)) / 35.0, 0, 1)
    level = np.convolve(level, [0.25, 0.5, 0.25], mode="same")
    mouth[:, 0] *= 0.35 + 0.65 * level
    for i, k in enumerate(MOUTH):
        m[:, FIELD[k]] = mouth[:, i]

    vowels = [(p, s, e) for p, s, e in phones if p.upper() in VOWELS and e - s >= 0.05]
    frame = lambda s: min(n - 1, int(s * fps))
    loud = np.array([rms_db[frame(s):max(frame(e), frame(s) + 1)].mean() for _, s, e in vowels]) if vowels else np.zeros(0)
    voiced = f0_hz[f0_hz > 0]
    f0_med = np.median(voiced) if len(voiced) else 120.0
    stressed_cut = np.percentile(loud, 65) if len(loud) else 0
    for (p, s, e), level in zip(vowels, loud):
        if level < stressed_cut:
            continue
        m[:, FIELD["head_pitch"]] += head * rng.uniform(1.5, 3.5) * _bump(n, fps, s + 0.1, 0.3)
        f0 = f0_hz[frame(s):max(frame(e), frame(s) + 1)]
        f0 = f0[f0 > 0]
        if len(f0) and 12 * np.log2(f0.max() / f0_med) > 1.5:
            m[:, FIELD["brow_raise"]] += rng.uniform(0.3, 0.6) * _bump(n, fps, s + 0.15, 0.45)

    speaking = np.zeros(n)
    for p, s, e in phones:
        if p.upper() != "SIL":
            speaking[frame(s):frame(e) + 1] = 1
    talk = np.convolve(speaking, np.ones(int(fps)) / fps, mode="same")
    m[:, FIELD["head_pitch"]] += head * ou_noise(rng, n, fps, 2.0, 0.8)
    m[:, FIELD["head_yaw"]] += head * ou_noise(rng, n, fps, 2.5, 2.0) * (0.6 + 0.4 * talk)
    m[:, FIELD["head_roll"]] += head * ou_noise(rng, n, fps, 3.0, 1.2)
    m[:, FIELD["head_tx"]] += head * ou_noise(rng, n, fps, 3.0, 0.006)
    m[:, FIELD["head_ty"]] += head * (ou_noise(rng, n, fps, 3.0, 0.004)
                                      + 0.004 * np.sin(2 * np.pi * 0.25 * np.arange(n) / fps + rng.uniform(0, 6.3)))
    m[:, FIELD["head_scale"]] += head * ou_noise(rng, n, fps, 4.0, 0.006)

    # blinks: a Poisson process (15/min) plus a likely blink as a pause begins
    blink = np.zeros(n)
    shape = np.interp(np.arange(int(0.35 * fps) + 1) / fps, [0, 0.04, 0.08, 0.12, 0.18, 0.25, 0.32],
                      [0, 0.6, 1, 1, 0.6, 0.2, 0])
    starts = [i for i in range(n) if rng.random() < 15 / 60 / fps]
    starts += [frame(s) for p, s, e in phones if p.upper() == "SIL" and e - s > 0.2 and s > 0.1 and rng.random() < 0.5]
    last = -10 ** 9
    for i in sorted(starts):
        if i - last < fps:
            continue
        seg = shape[: n - i]
        blink[i:i + len(seg)] = np.maximum(blink[i:i + len(seg)], seg)
        last = i
    m[:, FIELD["blink_l"]] = m[:, FIELD["blink_r"]] = blink

    if gaze is not None:
        m[:, FIELD["gaze_x"]] = gaze[0] + ou_noise(rng, n, fps, 0.5, 0.02)
        m[:, FIELD["gaze_y"]] = gaze[1] + ou_noise(rng, n, fps, 0.5, 0.02)
    else:
        t = 0
        while t < n:
            hold = int(rng.uniform(1.0, 3.5) * fps)
            gx, gy = (0.0, 0.0) if rng.random() < 0.5 else (rng.uniform(-0.35, 0.35), rng.uniform(-0.15, 0.2))
            m[t:t + hold, FIELD["gaze_x"]], m[t:t + hold, FIELD["gaze_y"]] = gx, gy
            t += hold
    for name, offset in EMOTIONS[emotion].items():
        m[:, FIELD[name]] += offset
    return clip_motion(m)
