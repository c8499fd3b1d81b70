"""The hand-made audio driver: loudness and spectral shape -> mouth, prosody -> head and brows,
a seeded random process -> blinks and gaze. Kept as the baseline for the trained model.

Offline, so smoothing is zero-phase (forward-backward) and the mouth does not lag the voice.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

from talkrt.runtime.audio_enc import AudioFeatures
from talkrt.runtime.motion import EMOTIONS, FIELD, MOTION_FIELDS, MotionControls, clip_motion

BLINKS_PER_MIN = 17.0
BLINK_MIN_GAP_S = 1.0


def ou_noise(rng: np.random.Generator, n: int, fps: float, tau_s: float, sigma: float) -> np.ndarray:
    """Ornstein-Uhlenbeck noise: smooth random drift with time constant tau and std sigma."""
    a = np.exp(-1.0 / (tau_s * fps))
    noise = rng.standard_normal(n) * sigma * np.sqrt(1 - a * a)
    x0 = rng.standard_normal() * sigma
    out, _ = lfilter([1.0], [1.0, -a], noise, zi=[a * x0])
    return out


def _blink_track(rng: np.random.Generator, n: int, fps: float, pauses: np.ndarray) -> np.ndarray:
    """0..1 eyelid closure; blinks arrive as a Poisson process, a little likelier at pauses."""
    shape_t = np.array([0.0, 0.04, 0.08, 0.12, 0.18, 0.25, 0.32])  # s
    shape_v = np.array([0.0, 0.6, 1.0, 1.0, 0.6, 0.2, 0.0])
    track = np.zeros(n)
    rate = BLINKS_PER_MIN / 60.0 / fps  # per frame
    t = int(rng.uniform(0.3, 2.0) * fps)
    while t < n:
        p = rate * (2.5 if pauses[t] else 1.0)
        if rng.random() < p:
            ts = (np.arange(int(0.35 * fps) + 1)) / fps
            seg = np.interp(ts, shape_t, shape_v)
            end = min(n, t + len(seg))
            track[t:end] = np.maximum(track[t:end], seg[: end - t])
            t += int(BLINK_MIN_GAP_S * fps)
        else:
            t += 1
    return track


class HeuristicMotion:
    name = "heuristic"

    def generate(self, f: AudioFeatures, controls: MotionControls) -> np.ndarray:
        rng = np.random.default_rng(controls.seed)
        n, fps = f.frames, f.fps
        m = np.zeros((n, len(MOTION_FIELDS)))
        sec = lambda s: s * fps

        # speech level relative to this recording: 0 at the noise floor, 1 at loud vowels
        db = f.rms_db.astype(np.float64)
        speaking = db > -60
        if speaking.sum() >= 3:
            peak = np.percentile(db[speaking], 95)
            floor = max(np.percentile(db[speaking], 5), peak - 40.0, -60.0)
        else:
            peak, floor = 0.0, -60.0
        level = np.clip((db - floor) / max(peak - floor, 1e-3), 0, 1)
        active = level > 0.08
        # energy (linear) drives the aperture; loudness in dB decides what counts as speech
        lin = np.clip(f.rms / (10 ** (peak / 20) + 1e-9), 0, 1.5)
        jaw = np.clip(lin, 0, 1) ** 0.7 * active
        # nasals (m, n) and closures: strong low band, almost no high band -> lips together
        nasal = np.clip((f.low_ratio - 0.75) / 0.2, 0, 1) * np.clip((0.02 - f.high_ratio) / 0.02, 0, 1) * f.voiced
        jaw *= 1 - 0.7 * nasal
        m[:, FIELD["jaw_open"]] = gaussian_filter1d(jaw, 0.6)
        # bilabial closure: a short dip between two active stretches
        dip = np.zeros(n)
        if n > 2:
            dip[1:-1] = (level[1:-1] < 0.25) & (level[:-2] > 0.35) & (level[2:] > 0.35)
        m[:, FIELD["lip_press"]] = np.clip(gaussian_filter1d(np.maximum(dip, 0.8 * nasal), 0.5), 0, 1)

        # vowel colour from the spectral centroid: high = spread (i, e), low = round (u, o)
        cen = f.centroid_hz.astype(np.float64)
        ref = np.median(cen[active]) if active.any() else 1500.0
        colour = np.tanh((cen - ref) / 600.0) * active * np.clip(level * 1.5, 0, 1)
        colour = gaussian_filter1d(colour, 1.0)
        m[:, FIELD["lip_spread"]] = np.clip(colour, 0, 1) * 0.8
        m[:, FIELD["lip_round"]] = np.clip(-colour, 0, 1) * 0.8

        # prosody: pitch above the speaker's median raises the brows; syllable onsets nod the head
        f0 = f.f0_hz.astype(np.float64)
        voiced = f0 > 0
        med = np.median(f0[voiced]) if voiced.any() else 120.0
        semis = np.where(voiced, 12 * np.log2(np.maximum(f0, 1) / med), 0.0)
        m[:, FIELD["brow_raise"]] = np.clip(gaussian_filter1d(np.clip(semis - 1.5, 0, 6) / 6, sec(0.12)), 0, 1)
        onset = np.clip(np.diff(gaussian_filter1d(level, 1.0), prepend=0), 0, None)
        nod = gaussian_filter1d(onset * (level > 0.5), sec(0.15)) * 60.0
        hm = controls.head_motion
        talk = gaussian_filter1d(active.astype(np.float64), sec(0.5))
        m[:, FIELD["head_pitch"]] = hm * (np.clip(nod, 0, 4) + ou_noise(rng, n, fps, 1.5, 0.6 + 0.8 * talk.mean()))
        m[:, FIELD["head_yaw"]] = hm * ou_noise(rng, n, fps, 2.5, 2.0) * (0.5 + 0.5 * talk)
        m[:, FIELD["head_roll"]] = hm * ou_noise(rng, n, fps, 3.0, 1.2)
        m[:, FIELD["head_tx"]] = hm * ou_noise(rng, n, fps, 3.0, 0.006)
        breath = 0.004 * np.sin(2 * np.pi * 0.25 * np.arange(n) / fps + rng.uniform(0, 6.3))
        m[:, FIELD["head_ty"]] = hm * (ou_noise(rng, n, fps, 3.0, 0.004) + breath)
        m[:, FIELD["head_scale"]] = hm * ou_noise(rng, n, fps, 4.0, 0.006)

        # eyes: blinks (both lids together, one slightly lagging), gaze saccades held between
        pauses = gaussian_filter1d(active.astype(np.float64), sec(0.2)) < 0.2
        blink = _blink_track(rng, n, fps, pauses)
        m[:, FIELD["blink_r"]] = blink
        m[:, FIELD["blink_l"]] = np.concatenate([[0.0], blink[:-1]]) if n > 1 else blink
        if controls.gaze is not None:
            m[:, FIELD["gaze_x"]], m[:, FIELD["gaze_y"]] = controls.gaze
        else:
            gx, gy, t = 0.0, 0.0, 0
            while t < n:
                hold = int(rng.uniform(1.0, 3.5) * fps)
                m[t:t + hold, FIELD["gaze_x"]], m[t:t + hold, FIELD["gaze_y"]] = gx, gy
                t += hold
                gx, gy = (0.0, 0.0) if rng.random() < 0.5 else (rng.uniform(-0.35, 0.35), rng.uniform(-0.15, 0.2))
            for k in ("gaze_x", "gaze_y"):
                m[:, FIELD[k]] = gaussian_filter1d(m[:, FIELD[k]], 0.7)

        for name, offset in EMOTIONS[controls.emotion].items():
            m[:, FIELD[name]] += offset
        return clip_motion(m)
