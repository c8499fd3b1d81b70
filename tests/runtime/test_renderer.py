"""The builtin renderer: what each coefficient does to the picture, measured on the example face."""
from __future__ import annotations

import numpy as np
import pytest

from talkrt.runtime.builtin import landmarks as L
from talkrt.runtime.builtin.renderer import BuiltinRenderer, RenderOptions
from talkrt.runtime.motion import FIELD, MOTION_FIELDS


@pytest.fixture(scope="module")
def renderer(portrait_rgb, portrait_mesh):
    return BuiltinRenderer(portrait_rgb, portrait_mesh.points, RenderOptions(crop_only=True))


def _motion(**kw):
    m = np.zeros(len(MOTION_FIELDS), np.float32)
    for k, v in kw.items():
        m[FIELD[k]] = v
    return m


def _mouth_box(r):
    pts = r.rig.points
    lo, hi = pts[list(L.LIPS_UPPER_OUTER)].min(0), pts[list(L.LIPS_LOWER_OUTER)].max(0)
    return int(lo[1]) - 5, int(hi[1]) + 25, int(lo[0]), int(hi[0])


def test_jaw_opens_a_dark_mouth_and_closed_shows_none(renderer):
    y0, y1, x0, x1 = _mouth_box(renderer)
    closed = renderer.render(_motion()).copy()[y0:y1, x0:x1].astype(float)
    opened = renderer.render(_motion(jaw_open=0.8)).copy()[y0:y1, x0:x1].astype(float)
    dark = lambda im: (im.mean(2) < 60).sum()
    assert dark(opened) > dark(closed) + 150
    # the mouth interior includes teeth: bright, unsaturated pixels appear
    bright = lambda im: ((im.min(2) > 150) & (im.max(2) - im.min(2) < 60)).sum()
    assert bright(opened) > 20


def test_lip_press_overrides_the_jaw(renderer):
    y0, y1, x0, x1 = _mouth_box(renderer)
    pressed = renderer.render(_motion(jaw_open=0.8, lip_press=1.0)).copy()[y0:y1, x0:x1]
    closed = renderer.render(_motion(lip_press=1.0)).copy()[y0:y1, x0:x1]
    assert np.abs(pressed.astype(float) - closed).mean() < 2.0
    pts = renderer.warp(_motion(jaw_open=0.8, lip_press=1.0))
    gap = pts[list(L.LIPS_LOWER_INNER[1:-1]), 1] - pts[list(L.LIPS_UPPER_INNER[1:-1]), 1]
    assert gap.max() < 1.0  # the lips meet


def test_a_smile_with_teeth_stays_at_rest(renderer, portrait_rgb):
    # the example smiles with its teeth: at rest the mouth is the photo's (open, teeth showing)
    assert renderer.rig.reopen is not None
    rest = renderer.warp(_motion())
    gap = rest[list(L.LIPS_LOWER_INNER[1:-1]), 1] - rest[list(L.LIPS_UPPER_INNER[1:-1]), 1]
    assert gap.max() > 0.1 * renderer.rig.mouth_width
    y0, y1, x0, x1 = _mouth_box(renderer)
    import cv2

    crop = cv2.warpAffine(portrait_rgb, renderer.affine, (512, 512), flags=cv2.INTER_CUBIC)
    frame = renderer.render(_motion()).copy()
    diff = lambda f: np.abs(f[y0:y1, x0:x1].astype(float) - crop[y0:y1, x0:x1]).mean()
    # at rest it is the photo's own mouth (measured ~2 grey levels; the reopened and repainted mouth
    # alone was ~5), and a wider jaw leaves that behind for the painted interior
    assert diff(frame) < 3
    assert diff(renderer.render(_motion(jaw_open=0.5)).copy()) > 8


def test_blink_covers_the_eye(renderer):
    pts = renderer.rig.points
    iris = pts[468]
    patch = lambda im: im[int(iris[1]) - 3:int(iris[1]) + 4, int(iris[0]) - 3:int(iris[0]) + 4].astype(float)
    open_eye = patch(renderer.render(_motion()).copy())
    shut = patch(renderer.render(_motion(blink_r=1.0)).copy())
    assert shut.mean() > open_eye.mean() + 25  # the dark iris is replaced by lid skin


def test_head_motion_keeps_the_border_still(renderer):
    base = renderer.render(_motion()).copy().astype(float)
    turned = renderer.render(_motion(head_yaw=6, head_pitch=4, head_roll=2)).copy().astype(float)
    face = slice(200, 320)
    assert np.abs(turned[face, face] - base[face, face]).mean() > 5
    border = np.ones(base.shape[:2], bool)
    border[24:-24, 24:-24] = False
    assert np.abs(turned[border] - base[border]).mean() < 0.5


def test_render_reuses_its_buffer(renderer):
    a = renderer.render(_motion())
    b = renderer.render(_motion(jaw_open=0.5))
    assert a is b  # the per-frame loop allocates no new frame


@pytest.fixture(scope="module")
def closed_mouth(analyzer):
    """A second portrait with closed lips: Grace Hopper (public domain), as matplotlib ships it."""
    mpl = pytest.importorskip("matplotlib")
    from pathlib import Path

    from PIL import Image

    rgb = np.asarray(Image.open(Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB"))
    return rgb, BuiltinRenderer(rgb, analyzer.analyze(rgb).points, RenderOptions())


def test_closed_mouth_photo_at_rest_is_the_photo(closed_mouth):
    rgb, r = closed_mouth
    assert not r.closed_by_warp
    out = r.render(_motion())
    # nothing moves at rest, so nothing is resampled or painted: the photo, pixel for pixel
    assert np.array_equal(out, rgb)


def test_face_keeps_its_sharpness_when_it_moves(closed_mouth):
    import cv2

    rgb, r = closed_mouth
    out = r.render(_motion(head_yaw=4, head_pitch=-3, head_roll=2, head_tx=0.01)).copy()
    x0, y0, x1, y1 = r.roi
    pts = r.points + [x0, y0]
    lo, hi = pts[list(L.FACE_OVAL)].min(0).astype(int), pts[list(L.FACE_OVAL)].max(0).astype(int)
    box = (slice(lo[1] + 20, hi[1] - 20), slice(lo[0] + 20, hi[0] - 20))
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F).var()
    assert np.abs(out[box].astype(float) - rgb[box]).mean() > 3  # it did move
    assert lap(out[box]) > 0.85 * lap(rgb[box])


def test_rounding_narrows_and_spreading_widens_the_mouth(renderer):
    width = lambda m: np.linalg.norm(np.subtract(*renderer.warp(m)[[61, 291]]))
    rest = width(_motion(jaw_open=0.3))
    assert width(_motion(jaw_open=0.3, lip_round=1.0)) < 0.88 * rest
    assert width(_motion(jaw_open=0.3, lip_spread=1.0)) > 1.08 * rest


def test_photo_teeth_are_the_open_mouths_teeth(renderer, portrait_rgb):
    # the example smiles with its teeth showing: the open mouth shows those teeth, not drawn ones
    assert renderer.mouth.from_photo
    import cv2

    m = _motion(jaw_open=0.5)
    pts = renderer.warp(m)
    opened = renderer.render(m).copy()
    poly = np.concatenate([pts[list(L.LIPS_UPPER_INNER)], pts[list(L.LIPS_LOWER_INNER[1:-1])][::-1]])
    inside = np.zeros(opened.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(poly).astype(np.int32)], 1)
    px = opened[inside > 0].astype(float)
    teeth = px[px.min(1) > 150]
    assert len(teeth) > 50
    photo_teeth = renderer.mouth.upper[..., :3][renderer.mouth.upper[..., 3] > 0.9].reshape(-1, 3)
    bright = photo_teeth[photo_teeth.min(1) > 150]
    assert np.abs(np.median(teeth, 0) - np.median(bright, 0)).max() < 25


def test_drawn_teeth_are_separate_teeth(closed_mouth):
    _, r = closed_mouth
    assert not r.mouth.from_photo
    tex = r.mouth.upper
    row = tex[int(0.05 * 240), :, :3].mean(1) * tex[int(0.05 * 240), :, 3]  # across the upper teeth
    arch = row[20:236]
    # gaps between teeth: brightness dips (<= centre) at each boundary; 4 or more across the arch
    lower = (arch[1:-1] <= arch[:-2]) & (arch[1:-1] <= arch[2:]) & (arch[1:-1] < 0.9 * arch.max())
    assert lower.sum() >= 4


def test_drawn_teeth_match_the_photos_light(closed_mouth):
    # Hopper's photo is dim and warm: studio-white teeth would glare like dentures. The drawn teeth
    # are no brighter than 1.3x her skin (sampled here between lower lip and chin), clearly below
    # the default white, and warmer (red over blue) than it
    from talkrt.runtime.builtin.mouth import TEETH_RGB, teeth_colour

    rgb, r = closed_mouth
    x0, y0 = r.roi[:2]
    pts = r.points + [x0, y0]
    lip, chin = pts[17], pts[L.CHIN]
    patch = rgb[int(lip[1] + 0.3 * (chin[1] - lip[1])):int(lip[1] + 0.6 * (chin[1] - lip[1])),
                int(chin[0]) - 10:int(chin[0]) + 10].reshape(-1, 3).astype(float)
    luma = lambda c: float(np.asarray(c, float) @ [0.299, 0.587, 0.114])
    teeth = r.mouth.upper[..., :3][r.mouth.upper[..., 3] > 0.9].reshape(-1, 3).max(0)
    assert luma(teeth) < min(1.3 * luma(np.median(patch, 0)), 0.85 * luma(TEETH_RGB))
    assert teeth[0] / teeth[2] > TEETH_RGB[0] / TEETH_RGB[2] + 0.05
    # a bright, neutral photo keeps the default white (closed lips: an outer lip outline, inner
    # lips on one line)
    white = np.full((96, 96, 3), 235, np.uint8)
    pts = np.tile([48.0, 48.0], (478, 1))
    outer = list(L.LIPS_UPPER_OUTER) + list(L.LIPS_LOWER_OUTER[1:-1])
    angles = np.linspace(np.pi, 0, len(L.LIPS_UPPER_OUTER)).tolist() + np.linspace(np.pi, 2 * np.pi, 11)[1:-1].tolist()
    pts[outer] = np.stack([48 + 16 * np.cos(angles), 48 + 6 * np.sin(angles)], 1)
    pts[list(L.LIPS_UPPER_INNER) + list(L.LIPS_LOWER_INNER)] = np.stack([np.linspace(34, 62, 22), np.full(22, 48.0)], 1)
    assert np.allclose(teeth_colour(white, pts), TEETH_RGB, atol=1)
    # dark skin is not dim light: in a well-exposed photo (a white collar) the teeth stay near
    # white, not grey-brown
    dark = np.full((96, 96, 3), (92, 62, 48), np.uint8)
    dark[-10:] = 240
    assert luma(teeth_colour(dark, pts)) > 0.7 * luma(TEETH_RGB)
    # but an underexposed photo (nothing brighter than 70) keeps dim teeth
    dim = np.full((96, 96, 3), (60, 45, 38), np.uint8)
    dim[:8] = 70
    assert luma(teeth_colour(dim, pts)) <= 71


def test_gaze_moves_the_irises_over_a_persons_range(renderer):
    pts = lambda m: renderer.warp(m)
    rest = pts(_motion())
    eye_w = np.linalg.norm(renderer.rig.points[33] - renderer.rig.points[133])
    right = pts(_motion(gaze_x=1.0))
    assert (right[468, 0] - rest[468, 0]) > 0.25 * eye_w  # about 30 degrees of eye turn
    down = pts(_motion(gaze_y=1.0))
    assert (down[468, 1] - rest[468, 1]) > 0.1 * eye_w


def test_expressions_reach_cheeks_eyes_and_brows(renderer):
    rest = renderer.warp(_motion())
    happy = renderer.warp(_motion(smile=0.8)) - rest
    eye_lower = list(L.RIGHT_EYE_LOWER[2:-2])
    assert happy[eye_lower, 1].mean() < -0.5  # the lower lids rise (the squint of a real smile)
    cheek = 50  # a point on the right cheek's round
    assert happy[cheek, 1] < -1.0
    frown = renderer.warp(_motion(brow_furrow=0.8)) - rest
    assert frown[list(L.RIGHT_EYE_UPPER[0][2:-2]), 1].mean() > 0.5  # upper lids lower
    raised = renderer.warp(_motion(brow_raise=0.8)) - rest
    assert raised[list(L.RIGHT_EYE_UPPER[0][2:-2]), 1].mean() < -0.5  # eyes open wider


def test_closed_eye_shows_lid_skin_and_a_lash_line_not_a_slit(renderer):
    """Nearly and fully closed: no squeezed iris, sclera or lashes between the lids (they read as an
    open eye), only lid skin and one thin lash line. Measured: ~290 dark pixels open, ~90 shut; the
    squeezed slit alone kept ~220."""
    pts = renderer.rig.points
    eye = pts[list(L.RIGHT_EYE_UPPER[0] + L.RIGHT_EYE_LOWER)]
    (x0, y0), (x1, y1) = np.floor(eye.min(0)).astype(int) - 2, np.ceil(eye.max(0)).astype(int) + 3
    width = x1 - x0
    dark = lambda b: int((renderer.render(_motion(blink_r=b)).copy()[y0:y1, x0:x1].mean(2) < 80).sum())
    assert dark(0.0) > 4 * width  # iris, pupil, lashes
    for b in (0.9, 1.0):
        assert dark(b) < 2 * width  # a lash line about 2 px thick across the eye


def test_open_mouth_meets_the_lower_lip_without_an_outline(renderer):
    # a speaking opening: the lower lip's inner side (lip coloured) runs into the mouth, no dark
    # outline along the lip and no row of lower teeth in front of it
    import cv2

    m = _motion(jaw_open=0.3)
    pts = renderer.warp(m)
    renderer.decode(pts, m)
    img = renderer.work.astype(float)
    hsv = cv2.cvtColor(renderer.work, cv2.COLOR_RGB2HSV).astype(float)
    mw = renderer.rig.mouth_width
    lo, up = pts[list(L.LIPS_LOWER_INNER)], pts[list(L.LIPS_UPPER_INNER)]
    assert (lo[5, 1] - up[5, 1]) / mw > 0.2
    for k in (3, 4, 5, 6, 7):  # columns across the middle of the mouth
        x, y = int(round(lo[k, 0])), int(round(lo[k, 1]))
        edge = img[y - int(0.02 * mw):y - 1, x]  # just inside the lower contour
        lip = img[y + int(0.03 * mw), x]
        assert edge.mean(1).min() > 0.45 * lip.mean(), (k, edge, lip)  # not an outline into the dark
        band = slice(y - int(0.06 * mw), y)
        teeth = (hsv[band, x, 1] < 70) & (hsv[band, x, 2] > 140)
        assert teeth.sum() <= 1, k  # no lower teeth showing yet


def test_open_mouth_meets_the_upper_lip_without_an_outline(renderer):
    # the photo's teeth hang from the upper lip: along the lip line the frame is not much darker than
    # the teeth layer's own first rows (the opening's soft edge must not blend the dark cavity in)
    frame = renderer.render(_motion(jaw_open=0.3)).copy().astype(float)
    pts = renderer.warp(_motion(jaw_open=0.3))
    upper = pts[list(L.LIPS_UPPER_INNER)]
    luma = lambda px: px @ [0.299, 0.587, 0.114]
    first = luma(renderer.mouth.upper[:4, 96:160, :3].reshape(-1, 3)).mean()
    xs = np.arange(int(upper[3, 0]), int(upper[7, 0]))
    ys = np.round(np.interp(xs, upper[:, 0], upper[:, 1])).astype(int)
    for dy in (-1, 0):  # the lip line and the row above it: no pixel far darker than the teeth's shade
        assert luma(frame[ys + dy, xs]).min() > 0.7 * first, dy


def test_smile_photo_at_rest_keeps_its_chin(portrait_rgb, portrait_mesh):
    # closing the open smile moves the lips and, with them, the chin; in the full frame the closed
    # face must be put back wherever it moved, or the rest pose's reopening shifts the chin
    r = BuiltinRenderer(portrait_rgb, portrait_mesh.points, RenderOptions())
    assert r.closed_by_warp and r.photo_source is not None
    out = r.render(_motion()).astype(int)
    diff = np.abs(out - portrait_rgb).max(2)
    assert (diff > 20).sum() < 150  # was ~420, along the chin and the collar below it
    assert diff.mean() < 0.06


def test_chin_slides_over_the_neck_without_folding(renderer):
    # an open jaw during a nod moves the chin down a long way; the band between the chin and the head
    # ring under it must give way without folding (a fold tears the chin line into blocks)
    from talkrt.runtime.builtin.rig import N_MESH

    tri, p = renderer.grid.triangles, renderer.points
    area = lambda q: ((q[tri[:, 1], 0] - q[tri[:, 0], 0]) * (q[tri[:, 2], 1] - q[tri[:, 0], 1])
                      - (q[tri[:, 1], 1] - q[tri[:, 0], 1]) * (q[tri[:, 2], 0] - q[tri[:, 0], 0]))
    ring = ((tri >= N_MESH) & (tri < N_MESH + len(L.FACE_OVAL))).any(1)
    under_chin = ring & (p[tri].mean(1)[:, 1] > p[152, 1] - 20)
    assert under_chin.sum() >= 5
    for jaw, pitch in ((0.4, 7.0), (0.6, 8.0)):
        q = p + renderer.rig.displace(_motion(jaw_open=jaw, head_pitch=pitch))
        ratio = (area(q) / area(p))[under_chin]
        assert ratio.min() > 0.2, (jaw, pitch, ratio.min())
