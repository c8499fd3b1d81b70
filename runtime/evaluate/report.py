"""The pictures of `talkrt eval`: a contact sheet (photo beside frames, mouth close-ups on open vowels,
on p/b/m and in silence) and a page of plots (aperture against the audio, pose, identity, eyes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from talkrt.runtime.evaluate import metrics as M

TILE = (192, 132)  # mouth close-up width, height
HEAD_H = 320  # height of the whole-frame row
LABEL_W = 150


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, colour=(255, 255, 255)) -> None:
    import cv2

    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def mouth_tile(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A close-up of the mouth (and chin) scaled to TILE, framed by the inter-ocular distance."""
    import cv2

    d = float(M.iod(landmarks[None])[0])
    cx, cy = landmarks[48:68].mean(0)
    w, h = 1.4 * d, 1.4 * d * TILE[1] / TILE[0]
    src = np.float32([[cx - w / 2, cy - h / 2.6], [cx + w / 2, cy - h / 2.6], [cx - w / 2, cy + h * (1 - 1 / 2.6)]])
    dst = np.float32([[0, 0], [TILE[0], 0], [0, TILE[1]]])
    return cv2.warpAffine(rgb, cv2.getAffineTransform(src, dst), TILE, flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT)


def _fit_h(rgb: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def _phone_at(phones, t: float) -> str:
    for p, s, e in phones:
        if s <= t < e:
            return p
    return ""


def contact_sheet(path: Path, photo: np.ndarray, photo_marks: np.ndarray, frames: dict[int, np.ndarray],
                  marks: np.ndarray, picks: dict[str, list[int]], phones, fps: float) -> None:
    """Write the contact sheet PNG."""
    import cv2

    ap = M.aperture(marks)
    head = [("photo", _fit_h(photo, HEAD_H))]
    for label, key in (("widest opening", "widest"), ("silence", "silence")):
        if picks.get(key):
            i = picks[key][0]
            head.append((f"{label}: frame {i} ({i / fps:.2f} s)", _fit_h(frames[i], HEAD_H)))
    rows = []
    width = sum(img.shape[1] for _, img in head) + 10 * (len(head) + 1)
    top = np.full((HEAD_H + 40, width, 3), 32, np.uint8)
    x = 10
    for label, img in head:
        _text(top, label, (x, 22), 0.5)
        top[30:30 + HEAD_H, x:x + img.shape[1]] = img
        x += img.shape[1] + 10
    rows.append(top)

    photo_tile = mouth_tile(photo, photo_marks)
    _text(photo_tile, "photo", (6, 16))
    for group in ("open vowels", "p / b / m", "loudest", "silence"):
        if group not in picks:
            continue
        tiles = [photo_tile]
        for i in picks[group]:
            t = mouth_tile(frames[i], marks[i])
            phone = _phone_at(phones, (i + 0.5) / fps)
            _text(t, f"{i / fps:.2f}s {phone}", (6, 16))
            _text(t, f"gap {ap[i]:.2f}", (6, TILE[1] - 8))
            tiles.append(t)
        row = np.full((TILE[1] + 10, LABEL_W + len(tiles) * (TILE[0] + 6) + 4, 3), 32, np.uint8)
        _text(row, group, (8, TILE[1] // 2), 0.55)
        if len(tiles) == 1:
            _text(row, "(none in this clip)", (LABEL_W + TILE[0] + 12, TILE[1] // 2), 0.5)
        for k, t in enumerate(tiles):
            x = LABEL_W + k * (TILE[0] + 6)
            row[5:5 + TILE[1], x:x + TILE[0]] = t
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=32) for r in rows])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def plot_report(path: Path, result: dict, phones) -> None:
    """Write the plots PNG: aperture with envelope and phone target, mouth width, head pose,
    identity distance and eye aspect ratio over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["series"]
    fps = result["fps"]
    ap, env = np.array(s["aperture"]), np.array(s["envelope"])
    t = (np.arange(len(ap)) + 0.5) / fps
    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True)
    ax = axes[0]
    ax.plot(t, ap, color="tab:red", label="mouth aperture (IOD)")
    scale = ap.max() / max(env.max(), 1e-9)
    ax.plot(t, env * scale, color="tab:gray", alpha=0.8, label="audio RMS envelope (scaled)")
    if phones:
        target = M.openness_target(phones, fps, len(ap))
        ax.plot(t, target * ap.max(), color="tab:blue", alpha=0.6, ls="--", label="phone openness target (scaled)")
        for p, a, b in phones:
            if p in M.OPEN_VOWELS or p in M.BILABIALS:
                ax.axvspan(a, b, color="tab:green" if p in M.BILABIALS else "tab:orange", alpha=0.12, lw=0)
                ax.text((a + b) / 2, ap.max() * 1.02, p, ha="center", fontsize=7)
    ls = result["lipsync_envelope"]
    title = f"lip sync: envelope r {ls['r']:.2f} (best {ls['r_best']:.2f} at lag {ls['lag']})"
    if "lipsync_phones" in result:
        lp = result["lipsync_phones"]
        title += f"; phones r {lp['r']:.2f} (best {lp['r_best']:.2f} at lag {lp['lag']})"
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    axes[1].plot(t, s["mouth_width"], color="tab:purple")
    axes[1].set_ylabel("mouth width (IOD)")
    pose = np.array(s["pose_deg"])
    for k, name in enumerate(("pitch", "yaw", "roll")):
        axes[2].plot(t, pose[:, k] - np.median(pose[:, k]), label=name)
    axes[2].set_ylabel("head pose (deg, about median)")
    axes[2].legend(loc="upper right", fontsize=8)
    axes[2].set_title(f"head std {result['head_std_deg']:.2f} deg, mean step {result['head_step_deg']:.3f} deg", fontsize=10)
    it = (np.array(s["identity_frames"]) + 0.5) / fps
    axes[3].plot(it, s["identity"], color="tab:brown", label="identity distance to the photo")
    axes[3].axhline(0.30, color="tab:brown", ls=":", lw=1)
    axes[3].axhline(0.60, color="k", ls=":", lw=1)
    ax2 = axes[3].twinx()
    ax2.plot(t, s["eye_aspect"], color="tab:cyan", alpha=0.6, label="eye aspect ratio")
    ax2.set_ylabel("eye aspect")
    axes[3].set_ylabel("identity distance")
    axes[3].set_xlabel("time (s)")
    axes[3].set_title(f"identity max {result['identity_max']:.3f}; blinks {result['blinks_per_min']:.1f}/min", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
