"""The `decode` stage of the builtin family: a synthetic mouth interior under the lips.

Inside the driven inner-lip polygon it paints a dark cavity, the upper and lower teeth as bands
following the lip lines, and a shaded tongue; the result is blended in with a feathered mask.
A closed mouth has a polygon of (almost) no area and gets nothing.
"""
from __future__ import annotations

import cv2
import numpy as np

from talkrt.runtime.builtin import landmarks as L

CAVITY_RGB = np.array([46, 14, 16], np.float32)
TEETH_RGB = np.array([226, 220, 204], np.float32)
TONGUE_RGB = np.array([164, 72, 76], np.float32)
SUBPIXEL = 4  # cv2.fillPoly shift=2


def _poly_mask(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    pts = np.round(poly * SUBPIXEL).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
    return mask


def paint_mouth(frame: np.ndarray, points: np.ndarray, mouth_width: float, teeth_rgb: np.ndarray = TEETH_RGB,
                min_gap_px: float = 0.8) -> None:
    """Paint the mouth interior into `frame` ([S, S, 3] uint8, in place) for displaced `points`."""
    upper = points[list(L.LIPS_UPPER_INNER)]
    lower = points[list(L.LIPS_LOWER_INNER)]
    gap = float((lower[1:-1, 1] - upper[1:-1, 1]).max())
    if gap < min_gap_px:
        _paint_seam(frame, (upper + lower) / 2)
        return
    poly = np.concatenate([upper, lower[1:-1][::-1]])
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    off = np.array([x0, y0], np.float32)
    shape = (y1 - y0, x1 - x0)
    up, lo = upper - off, lower - off

    # cavity: darker towards the middle of the opening and towards the corners
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    mid_x = (up[0, 0] + up[-1, 0]) / 2
    half_w = max((up[-1, 0] - up[0, 0]) / 2, 1.0)
    side = np.clip(np.abs(xx - mid_x) / half_w, 0, 1)
    up_y = np.interp(xx[0], up[:, 0], up[:, 1])[None, :]
    lo_y = np.interp(xx[0], lo[:, 0], lo[:, 1])[None, :]
    depth = np.clip((yy - up_y) / np.maximum(lo_y - up_y, 1.0), 0, 1)
    shade = (0.75 + 0.25 * np.abs(depth - 0.5) * 2) * (1.0 - 0.45 * side ** 2)
    img = CAVITY_RGB * shade[..., None]

    # tongue: an ellipse resting on the lower lip, lighter at its top
    tongue_h = max(0.0, min(0.35 * gap, 0.12 * mouth_width))
    if tongue_h > 1.0:
        t_mask = np.zeros(shape, np.uint8)
        centre = (float(mid_x), float(lo[len(lo) // 2, 1] - 0.2 * tongue_h))
        axes = (float(0.36 * mouth_width), float(tongue_h))
        cv2.ellipse(t_mask, (round(centre[0] * SUBPIXEL), round(centre[1] * SUBPIXEL)),
                    (round(axes[0] * SUBPIXEL), round(axes[1] * SUBPIXEL)), 0, 0, 360, 255, -1, cv2.LINE_AA, 2)
        ta = cv2.GaussianBlur(t_mask, (3, 3), 0).astype(np.float32)[..., None] / 255.0
        t_shade = np.clip(0.65 + 0.35 * (centre[1] + axes[1] - yy) / (2 * axes[1]), 0.6, 1.0)[..., None]
        img = img * (1 - ta) + TONGUE_RGB * t_shade * (1 - 0.35 * side[..., None] ** 2) * ta

    # teeth: bands hanging from the upper lip and standing on the lower lip. They span the middle
    # of the mouth (the corners show cavity), sit in the lip's shadow at the root and are a little
    # translucent at the biting edge; the lower row is mostly hidden and darker.
    for lip, height, share, direction, bright, span in ((up, 0.085, 0.45, 1.0, 1.0, 0.40),
                                                        (lo, 0.035, 0.2, -1.0, 0.75, 0.26)):
        band_h = min(height * mouth_width, share * gap)
        if direction < 0:  # the lower row shows only in a wide-open mouth
            band_h *= float(np.clip((gap / mouth_width - 0.10) / 0.1, 0, 1))
        if band_h < 0.7:
            continue
        xs = np.linspace(mid_x - span * mouth_width, mid_x + span * mouth_width, 15)
        order = np.argsort(lip[:, 0])
        root = np.interp(xs, lip[order, 0], lip[order, 1])
        profile = np.sqrt(np.clip(1.0 - ((xs - mid_x) / (span * mouth_width)) ** 2, 0.0, 1.0)) * 0.7 + 0.3
        edge = root + direction * band_h * profile
        band = np.concatenate([np.stack([xs, root], 1), np.stack([xs, edge], 1)[::-1]]).astype(np.float32)
        b_mask = cv2.GaussianBlur(_poly_mask(shape, band), (3, 3), 0).astype(np.float32)[..., None] / 255.0
        root_y = np.interp(xx[0], xs, root)[None, :]
        v = np.clip(direction * (yy - root_y) / band_h, 0, 1)  # 0 at the root, 1 at the biting edge
        along = 0.78 + 0.22 * np.clip(v / 0.35, 0, 1) - 0.12 * np.clip((v - 0.75) / 0.25, 0, 1)
        gaps = 1.0 - 0.05 * (np.cos((xx - mid_x) / (0.09 * mouth_width) * np.pi) > 0.95)
        t_shade = bright * along * (1.0 - 0.35 * side ** 2) * gaps
        img = img * (1 - b_mask) + teeth_rgb * t_shade[..., None] * b_mask

    alpha = _poly_mask(shape, poly - off).astype(np.float32) / 255.0
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + img * alpha, 0, 255).astype(np.uint8)


def teeth_colour(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The photo's own teeth colour where its mouth shows them, else a neutral off-white."""
    poly = np.concatenate([points[list(L.LIPS_UPPER_INNER)], points[list(L.LIPS_LOWER_INNER[1:-1])][::-1]])
    mask = _poly_mask(crop.shape[:2], poly) > 200
    if mask.sum() < 30:
        return TEETH_RGB
    px = crop[mask].astype(np.float32)
    bright = px[px.sum(1) >= np.percentile(px.sum(1), 70)]
    colour = np.median(bright, 0)
    if colour.mean() < 150 or colour.min() < 100:  # dark or strongly tinted: not teeth
        return TEETH_RGB
    return (0.6 * colour + 0.4 * TEETH_RGB).astype(np.float32)


def fill_mouth_opening(crop: np.ndarray, points: np.ndarray, mouth_width: float) -> np.ndarray:
    """Inpaint the teeth and cavity of a photo's open mouth with the surrounding lip colour,
    so that closing it (a warp that squeezes the opening to a line) leaves no teeth at the seam."""
    poly = np.concatenate([points[list(L.LIPS_UPPER_INNER)], points[list(L.LIPS_LOWER_INNER[1:-1])][::-1]])
    mask = _poly_mask(crop.shape[:2], poly)
    grow = max(3, int(round(0.06 * mouth_width))) | 1
    mask = cv2.dilate((mask > 0).astype(np.uint8) * 255, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    return cv2.inpaint(crop, mask, max(3, grow), cv2.INPAINT_TELEA)


def _soft_line(frame: np.ndarray, line: np.ndarray, rgb: tuple[int, int, int], opacity: float, margin: int) -> None:
    """Blend an antialiased, slightly blurred 2-px polyline of colour `rgb` into `frame` (in place)."""
    x0, y0 = np.floor(line.min(0)).astype(int) - margin
    x1, y1 = np.ceil(line.max(0)).astype(int) + margin + 1
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    layer = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.polylines(layer, [np.round((line - [x0, y0]) * SUBPIXEL).astype(np.int32)], False, 255, 2, cv2.LINE_AA, shift=2)
    alpha = cv2.GaussianBlur(layer, (3, 3), 0).astype(np.float32)[..., None] / 255.0 * opacity
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (roi * (1 - alpha) + np.array(rgb, np.float32) * alpha).astype(np.uint8)


def paint_eyelids(frame: np.ndarray, points: np.ndarray, blink_r: float, blink_l: float) -> None:
    """A soft lash line along each lid margin as it closes (hides the sclera at the seam)."""
    for blink, ring, lower in ((blink_r, L.RIGHT_EYE_UPPER[0], L.RIGHT_EYE_LOWER),
                               (blink_l, L.LEFT_EYE_UPPER[0], L.LEFT_EYE_LOWER)):
        strength = float(np.clip((blink - 0.45) / 0.45, 0, 1))
        if strength > 0:
            line = np.concatenate([points[[lower[0]]], points[list(ring)], points[[lower[-1]]]])
            _soft_line(frame, line, (52, 36, 34), 0.75 * strength, margin=4)


def _paint_seam(frame: np.ndarray, line: np.ndarray) -> None:
    """The soft dark line where closed lips meet."""
    _soft_line(frame, line, (96, 42, 44), 0.55, margin=3)
