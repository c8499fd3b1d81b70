"""The `decode` stage of the builtin family: the mouth interior under the driven lips.

The interior is drawn in mouth coordinates: u runs across the opening (-1 at the right corner,
+1 at the left), and depth is measured in mouth widths *below the upper lip* for the upper layer
(upper teeth and their gum line, fixed to the skull) and *above the lower lip* for the lower layer
(lower teeth and the tongue, carried by the jaw). Each layer is an RGBA texture made once per
portrait, from the photo's own open mouth where it shows teeth, else drawn (separate teeth with
their gaps, gum line and shading, a tongue). Per frame both layers are remapped into the opening
over a dark cavity whose depth shades it. A closed mouth has (almost) no opening and gets a seam.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkrt.runtime.builtin import landmarks as L

CAVITY_RGB = np.array([58, 18, 22], np.float32)
TEETH_RGB = np.array([238, 230, 212], np.float32)
GUM_RGB = np.array([196, 104, 108], np.float32)
TONGUE_RGB = np.array([178, 84, 88], np.float32)
TEETH_SKIN_LUMA = 1.15  # drawn teeth are at most this much brighter than the skin around the mouth
TEETH_MIN_SCALE = 0.75  # and at least this share of TEETH_RGB (teeth are no darker for darker skin)
SUBPIXEL = 4  # cv2.fillPoly shift=2
TEX_W = 256  # texture columns over u in [-1, 1]
TEX_PER_MW = 240  # texture rows per mouth width of depth
UPPER_DEPTH = 0.24  # mouth widths of the upper layer
LOWER_DEPTH = 0.20
LIP_ROLL = 0.03  # mouth widths of the lower lip's inner side seen in an open mouth
TONGUE_CREST = 0.12  # mouth widths above the lower lip at the middle
# upper incisors show this far below the upper lip at rest; the lip lifts to show more when wide open
TEETH_SHOWN_CLOSED, TEETH_SHOWN_OPEN = 0.035, 0.10


@dataclass(frozen=True)
class MouthTextures:
    upper: np.ndarray  # [Hu, TEX_W, 4] float32 RGB + alpha, row r = depth r / TEX_PER_MW below the upper lip
    lower: np.ndarray  # [Hl, TEX_W, 4] above the lower lip
    from_photo: bool
    shown: float = 0.0  # photo textures: the depth the photo's own opening shows (mouth widths)


def _poly_mask(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    pts = np.round(poly * SUBPIXEL).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=2)
    return mask


# upper arch, centre outwards: (half-width in u, crown length in mouth widths, brightness)
# (real incisors are ~0.19 of the mouth's width; the arch turns away, so outer teeth look narrower)
_UPPER_TEETH = ((0.30, 0.165, 1.0), (0.22, 0.145, 0.93), (0.17, 0.150, 0.82), (0.13, 0.125, 0.66),
                (0.10, 0.11, 0.52))
_LOWER_TEETH = ((0.20, 0.06, 0.95), (0.19, 0.06, 0.9), (0.17, 0.065, 0.8), (0.14, 0.055, 0.66), (0.12, 0.05, 0.52))


def _draw_row(rows: int, teeth, colour: np.ndarray, gum_rows: int, root_shadow: float) -> np.ndarray:
    """RGBA of one dental row hanging down from row 0 (flip it for a standing row)."""
    tex = np.zeros((rows, TEX_W, 4), np.float32)
    u = np.linspace(-1, 1, TEX_W)
    depth = np.arange(rows)[:, None] / TEX_PER_MW
    edges = np.concatenate([[0.0], np.cumsum([w for w, _, _ in teeth])])
    for k, (w, length, bright) in enumerate(teeth):
        a, b = edges[k], edges[k + 1]
        for sign in (1, -1):
            inside = (sign * u >= a) & (sign * u < b)
            if not inside.any():
                continue
            t = (sign * u[inside] - a) / (b - a)  # 0..1 across the tooth
            # crown outline: rounded at the biting edge, canines pointed
            tip = length * (1 - (0.35 if k == 2 else 0.12) * (2 * t - 1) ** 2)
            inside_y = depth <= tip[None, :]
            across = 0.80 + 0.20 * np.sin(np.pi * t) ** 0.3  # curvature: darker towards the gaps
            along = np.clip(depth / max(root_shadow, 1e-6), 0, 1) * 0.3 + 0.7  # shadow under the lip
            edge = 1 - 0.12 * np.clip((depth - 0.9 * tip[None, :]) / (0.1 * tip[None, :]), 0, 1)  # translucent tip
            shade = bright * across[None, :] * along * edge
            rgb = colour[None, None, :] * shade[..., None]
            alpha = inside_y * np.clip((tip[None, :] - depth) * TEX_PER_MW, 0, 1)
            cols = np.where(inside)[0]
            tex[:, cols, :3] = rgb
            tex[:, cols, 3] = alpha
    # gum line: a scalloped pink band at the root, dipping between the teeth
    if gum_rows > 0:
        gaps = np.min(np.abs(np.abs(u)[:, None] - edges[None, :]), 1)
        scallop = gum_rows * (0.5 + 0.5 * np.clip(1 - gaps / 0.04, 0, 1))
        gum = np.arange(rows)[:, None] < scallop[None, :]
        tex[gum, :3] = GUM_RGB * 0.85
        tex[gum, 3] = np.maximum(tex[gum, 3], 0.9)
    # beyond the last tooth the arch turns away into the dark
    reach = edges[-1]
    tex[..., 3] *= np.clip((reach - np.abs(u)) / 0.06, 0, 1)[None, :]
    return tex


def drawn_textures(teeth_rgb: np.ndarray = TEETH_RGB) -> MouthTextures:
    """Synthetic layers: upper teeth with gum line; lower teeth in front of a tongue."""
    hu, hl = int(UPPER_DEPTH * TEX_PER_MW), int(LOWER_DEPTH * TEX_PER_MW)
    upper = _draw_row(hu, _UPPER_TEETH, teeth_rgb, gum_rows=3, root_shadow=0.03)
    lower_teeth = _draw_row(hl, _LOWER_TEETH, teeth_rgb, gum_rows=0, root_shadow=0.004)[::-1]
    # the tongue: a low mound behind the lower teeth (its tip at about their edges), lit at the
    # front, in shadow towards the back and the sides
    u = np.linspace(-1, 1, TEX_W)[None, :]
    d = (hl - 1 - np.arange(hl))[:, None] / TEX_PER_MW  # depth above the lower lip
    crest = TONGUE_CREST * np.sqrt(np.clip(1 - (u / 0.8) ** 2, 0, 1))
    t_alpha = np.clip((crest - d) * TEX_PER_MW / 2, 0, 1)
    t_shade = (1.0 - 0.4 * np.clip(d / np.maximum(crest, 1e-3), 0, 1)) * (1 - 0.4 * (u / 0.75) ** 2)
    tongue = np.zeros((hl, TEX_W, 4), np.float32)
    tongue[..., :3] = TONGUE_RGB * t_shade[..., None]
    tongue[..., 3] = t_alpha
    a = lower_teeth[..., 3:4]
    lower = np.concatenate([lower_teeth[..., :3] * a + tongue[..., :3] * (1 - a),
                            a + tongue[..., 3:4] * (1 - a)], -1)
    return MouthTextures(upper.astype(np.float32), lower[::-1].copy().astype(np.float32), False)


def _lip_curves(points: np.ndarray):
    upper = points[list(L.LIPS_UPPER_INNER)]
    lower = points[list(L.LIPS_LOWER_INNER)]
    return upper, lower


def photo_textures(crop: np.ndarray, points: np.ndarray, mouth_width: float) -> MouthTextures | None:
    """Layers for a photo whose open mouth shows teeth: its opening, hanging from the upper lip, is
    the upper layer; the lower layer is drawn in its teeth colour. None when the photo shows none."""
    upper, lower = _lip_curves(points)
    gaps = lower[1:-1, 1] - upper[1:-1, 1]
    own = _photo_teeth(crop, points)
    if gaps.max() < 0.06 * mouth_width or own is None:
        return None
    colour = teeth_colour(crop, points)
    gap_mw = float(np.median(gaps[2:-2])) / mouth_width
    mid_x = (upper[0, 0] + upper[-1, 0]) / 2
    half = max((upper[-1, 0] - upper[0, 0]) / 2, 1.0)
    u = np.linspace(-1, 1, TEX_W)
    xs = (mid_x + u * half).astype(np.float32)
    up_y = np.interp(xs, *_sorted(upper))
    lo_y = np.interp(xs, *_sorted(lower))
    # the photo's whole opening hangs from the upper lip as the upper layer (its teeth keep their
    # place under the upper lip); opened wider than in the photo, the drawn lower layer shows below
    rows = int(UPPER_DEPTH * TEX_PER_MW)
    d = np.arange(rows)[:, None] / TEX_PER_MW * mouth_width
    my = (up_y[None, :] + d).astype(np.float32)
    mx = np.broadcast_to(xs[None, :], my.shape).astype(np.float32)
    rgb = cv2.remap(crop, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    reach = (lo_y - up_y)[None, :]
    alpha = np.clip((reach - d) / (0.03 * mouth_width), 0, 1)
    alpha *= np.clip((1 - np.abs(u)) / 0.12, 0, 1)[None, :]  # the corners squeeze shut
    upper_tex = np.concatenate([rgb, alpha[..., None]], -1).astype(np.float32)
    return MouthTextures(upper_tex, drawn_textures(colour).lower, True, shown=gap_mw)


def _sorted(line: np.ndarray):
    order = np.argsort(line[:, 0])
    return line[order, 0], line[order, 1]


def paint_mouth(frame: np.ndarray, points: np.ndarray, mouth_width: float, textures: MouthTextures | None = None,
                min_gap_px: float = 0.8, seam: bool = True) -> None:
    """Paint the mouth interior into `frame` ([H, W, 3] uint8, in place) for displaced `points`.
    A closed mouth gets a soft seam only when `seam` (the photo's open mouth was closed by the warp;
    a photo with closed lips already has its own lip line)."""
    textures = textures or _DEFAULT
    upper, lower = _lip_curves(points)
    gap = float((lower[1:-1, 1] - upper[1:-1, 1]).max())
    if gap < min_gap_px:
        if seam:
            _paint_seam(frame, (upper + lower) / 2)
        return
    poly = np.concatenate([upper, lower[1:-1][::-1]])
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    shape = (y1 - y0, x1 - x0)
    xx = np.arange(x0, x1, dtype=np.float32)
    yy = np.arange(y0, y1, dtype=np.float32)[:, None]
    mid_x = (upper[0, 0] + upper[-1, 0]) / 2
    half = max((upper[-1, 0] - upper[0, 0]) / 2, 1.0)
    u = np.clip((xx - mid_x) / half, -1, 1)
    up_y = np.interp(xx, *_sorted(upper))[None, :]
    lo_y = np.interp(xx, *_sorted(lower))[None, :]
    opening = np.maximum(lo_y - up_y, 1.0)
    gap_mw = gap / mouth_width

    # cavity: darkest in the middle of the opening and towards the corners
    depth = np.clip((yy - up_y) / opening, 0, 1)
    side = np.abs(u)[None, :]
    shade = (0.55 + 0.45 * np.abs(depth - 0.45) * 2) * (1.0 - 0.5 * side ** 2)
    img = CAVITY_RGB * np.clip(shade, 0.3, 1)[..., None]

    col = ((u + 1) / 2 * (TEX_W - 1)).astype(np.float32)[None, :]
    open_share = float(np.clip(gap_mw / 0.3, 0, 1))
    # lower layer: the lower lip hides the lower teeth until the jaw is well open
    hide = 0.065 - 0.05 * float(np.clip((gap_mw - 0.2) / 0.25, 0, 1))
    # and the wider the jaw opens, the more of the tongue's top (and the teeth) faces the camera
    d_lo = ((lo_y - yy) / mouth_width + hide) / (1 + 1.2 * max(0.0, gap_mw - 0.2))
    lower_rgba = _sample(textures.lower, col, d_lo, shape)
    img = img * (1 - lower_rgba[..., 3:]) + lower_rgba[..., :3] * lower_rgba[..., 3:]
    # upper layer: the upper lip covers the teeth roots; it lifts a little as the mouth opens
    if textures.from_photo:
        cover = 0.0
    else:
        shown = TEETH_SHOWN_CLOSED + (TEETH_SHOWN_OPEN - TEETH_SHOWN_CLOSED) * open_share
        cover = max(0.0, 0.165 - shown)
    # (rows at and just above the lip line, where the soft edge of the opening blends in, take the
    # layer's first row: sampling above it would blend the dark cavity in, a dark outline)
    d_up = np.maximum(yy - up_y, 0) / mouth_width + cover
    upper_rgba = _sample(textures.upper, col, d_up, shape)
    img = img * (1 - upper_rgba[..., 3:]) + upper_rgba[..., :3] * upper_rgba[..., 3:]
    # a soft shadow of the upper lip on whatever is just under it (a photo's teeth have their own)
    lip_shadow = 1 - (0.1 if textures.from_photo else 0.25) * np.exp(-np.maximum(yy - up_y, 0) / (0.012 * mouth_width))
    img *= lip_shadow[..., None]
    # the lower lip's wet inner side rolls into the mouth: its colour, darkening, over the last
    # LIP_ROLL of the opening (a drawn edge straight into the dark reads as an outline)
    lip_y = np.clip(np.round(lo_y[0] + LIP_ROLL * mouth_width), 0, frame.shape[0] - 1).astype(int)
    lip_rgb = frame[lip_y, np.clip(xx.astype(int), 0, frame.shape[1] - 1)].astype(np.float32)[None] * 0.8
    roll = np.clip(1 - (lo_y - yy) / (LIP_ROLL * mouth_width * min(1.0, gap_mw / 0.1)), 0, 1) ** 1.5
    img = img * (1 - roll[..., None]) + lip_rgb * roll[..., None]

    off = np.array([x0, y0], np.float32)
    alpha = _poly_mask(shape, poly - off).astype(np.float32) / 255.0
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + img * alpha, 0, 255).astype(np.uint8)


def _sample(tex: np.ndarray, col: np.ndarray, depth_mw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[h, w, 4] texture values at texture column `col` and depth (mouth widths); zero outside."""
    rows = (depth_mw * TEX_PER_MW).astype(np.float32)
    mx = np.broadcast_to(col, shape).astype(np.float32)
    my = np.broadcast_to(rows, shape).astype(np.float32)
    return cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _photo_teeth(crop: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """The colour of the teeth a photo's open mouth shows (its brightest pixels), or None."""
    poly = np.concatenate([points[list(L.LIPS_UPPER_INNER)], points[list(L.LIPS_LOWER_INNER[1:-1])][::-1]])
    mask = _poly_mask(crop.shape[:2], poly) > 200
    if mask.sum() < 30:
        return None
    px = crop[mask].astype(np.float32)
    bright = px[px.sum(1) >= np.percentile(px.sum(1), 70)]
    colour = np.median(bright, 0)
    if colour.mean() < 150 or colour.min() < 100:  # dark or strongly tinted: not teeth
        return None
    return colour


def _skin(crop: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """Median colour of the skin around the lips (a ring 0.075-0.25 mouth widths out), or None."""
    outer = np.concatenate([points[list(L.LIPS_UPPER_OUTER)], points[list(L.LIPS_LOWER_OUTER[1:-1])][::-1]])
    width = float(np.linalg.norm(points[L.MOUTH_CORNERS[0]] - points[L.MOUTH_CORNERS[1]]))
    lips = (_poly_mask(crop.shape[:2], outer) > 0).astype(np.uint8)
    disc = lambda d: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(d) | 1, int(d) | 1))
    ring = cv2.dilate(lips, disc(0.5 * width)).astype(bool) & ~cv2.dilate(lips, disc(0.15 * width)).astype(bool)
    if ring.sum() < 30:
        return None
    return np.median(crop[ring].astype(np.float32), 0)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _luma(rgb: np.ndarray) -> float:
    return float(np.asarray(rgb, np.float32) @ _LUMA)


def teeth_colour(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The photo's own teeth colour where its mouth shows them. Else TEETH_RGB seen in the photo's
    light: at most TEETH_SKIN_LUMA times as bright as the skin around the mouth (teeth in a
    talking mouth are shaded by the lips; a studio white under a dim or warm photo reads as
    dentures), tinted a little by the photo's white balance. Skin is a light meter only for light
    skin: teeth stay at least TEETH_MIN_SCALE of the default white, so darker skin never makes
    them grey. Whatever the skin, they are never brighter than the photo's brightest (98th
    percentile) luma: an underexposed photo keeps dim teeth."""
    own = _photo_teeth(crop, points)
    if own is not None:
        return (0.6 * own + 0.4 * TEETH_RGB).astype(np.float32)
    skin = _skin(crop, points)
    if skin is None or _luma(skin) < 1.0:
        return TEETH_RGB
    scale = float(np.clip(TEETH_SKIN_LUMA * _luma(skin) / _luma(TEETH_RGB), TEETH_MIN_SCALE, 1.0))
    brightest = float(np.percentile(crop.reshape(-1, 3).astype(np.float32) @ _LUMA, 98))
    scale = min(scale, max(brightest, 1.0) / _luma(TEETH_RGB))
    tint = (skin / _luma(skin)) ** 0.15
    return np.clip(TEETH_RGB * scale * tint, 0, 255).astype(np.float32)


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


def paint_eyelids(frame: np.ndarray, points: np.ndarray, blink_r: float, blink_l: float,
                  rest: np.ndarray | None = None) -> None:
    """Closing lids: the warp brings the upper lid margin down onto the lower lid, but what was the
    eye (iris, sclera, the lashes) is squeezed into a dark slit there, which reads as an open eye.
    From half closed on, the slit is covered with the lid skin around it and one lash line is drawn
    where the lids meet. `rest` are the undisplaced points (the eye's opening)."""
    rest = points if rest is None else rest
    for blink, ring, lower in ((blink_r, L.RIGHT_EYE_UPPER[0], L.RIGHT_EYE_LOWER),
                               (blink_l, L.LEFT_EYE_UPPER[0], L.LEFT_EYE_LOWER)):
        strength = float(np.clip((blink - 0.45) / 0.45, 0, 1))
        if strength <= 0:
            continue
        upper = np.concatenate([points[[lower[0]]], points[list(ring)], points[[lower[-1]]]])
        lo = points[list(lower)]
        order = np.argsort(lo[:, 0])
        low = np.stack([upper[:, 0], np.interp(upper[:, 0], lo[order, 0], lo[order, 1])], 1)  # lower lid under each
        opening = float(np.median(rest[list(lower[1:-1]), 1]) - np.median(rest[list(ring), 1]))
        if opening > 2:
            _cover_slit(frame, upper, low, opening, strength)
        _soft_line(frame, upper + 0.5 * strength * (low - upper), (34, 24, 22), 0.7 * strength, margin=4)


def _cover_slit(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, opening: float, strength: float) -> None:
    """Fill the band from half an open eye above the upper margin (the squeezed lashes) down to the
    lower lid with the skin around it (inpainting from the band's edge), blended in by `strength`."""
    poly = np.concatenate([upper - [0, 0.5 * opening], lower[::-1] + [0, 0.1 * opening]])
    x0, y0 = np.floor(poly.min(0) - 6).astype(int)
    x1, y1 = np.ceil(poly.max(0) + 7).astype(int)
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return
    roi = np.ascontiguousarray(frame[y0:y1, x0:x1])
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * SUBPIXEL).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
    filled = cv2.inpaint(roi, (mask > 0).astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32)
    k = max(3, int(0.3 * opening) | 1)
    alpha = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)[..., None] / 255.0 * strength
    frame[y0:y1, x0:x1] = (roi * (1 - alpha) + filled * alpha).astype(np.uint8)


def _paint_seam(frame: np.ndarray, line: np.ndarray) -> None:
    """The soft dark line where closed lips meet."""
    _soft_line(frame, line, (96, 42, 44), 0.55, margin=3)


_DEFAULT = drawn_textures()
