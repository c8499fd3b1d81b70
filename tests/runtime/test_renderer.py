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
    closed = renderer.render(_motion()).copy()[y0:y1, x0:x1]
    assert np.abs(pressed.astype(float) - closed).mean() < 2.0


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
