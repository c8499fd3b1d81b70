"""Motion coefficients -> control-point displacements for the builtin renderer.

Control points, all in 512x512 crop pixels: the 478 mesh points, a "head" ring just outside the
face oval (hair and skull move with the head), and a static ring plus the crop border (background
and shoulders never move). Expression coefficients act through fixed linear bases built once per
portrait from its mesh; head pose is a rigid 3-D rotation about a pivot behind the face, projected
orthographically (2.5-D, using the mesh's depth).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkrt.runtime.builtin import landmarks as L
from talkrt.runtime.motion import FIELD, MOTION_FIELDS

N_MESH = 478
HEAD_RING_SCALE = 1.28
NECK_HEAD_SHARE = 0.6  # how much of the head's movement the head ring under the chin (the neck) takes
NECK_JAW_SHARE = 0.6  # ... and of the jaw's
STATIC_RING_SCALE = 1.75


def _ring(points: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    return centre + (points - centre) * scale


def _interp_y(xs_line: np.ndarray, ys_line: np.ndarray, x: np.ndarray) -> np.ndarray:
    order = np.argsort(xs_line)
    return np.interp(x, xs_line[order], ys_line[order])


@dataclass
class Rig:
    """Per-portrait control points and bases; `displace` is the per-frame call."""

    points: np.ndarray  # [N, 2] source control points
    depth: np.ndarray  # [N] z of each point (crop px)
    bases: np.ndarray  # [K, N, 2] displacement per unit coefficient, expression fields
    neutral: np.ndarray  # [N, 2] displacement that closes a mouth open in the photo
    head_weight: np.ndarray  # [N] how much each point follows the head (0 static .. 1)
    pivot: np.ndarray  # [3]
    face_width: float
    mouth_width: float
    # a photo that smiles with its teeth keeps that mouth at rest: the rest pose is the closed face
    # plus `reopen` (back to the photo's opening), which lip press takes away again
    reopen: np.ndarray | None = None

    @property
    def n_points(self) -> int:
        return len(self.points)

    def displace(self, motion: np.ndarray) -> np.ndarray:
        """[N, 2] displacement for one frame's motion vector."""
        m = motion.astype(np.float32)
        expr = np.tensordot(m[_EXPR_IDX], self.bases, axes=1)  # [N, 2]
        # lip press closes whatever the jaw opened
        press = float(np.clip(m[FIELD["lip_press"]], 0, 1))
        if press > 0:
            expr -= press * float(np.clip(m[FIELD["jaw_open"]], 0, 1)) * self.bases[_EXPR_POS["jaw_open"]]
        local = self.points + self.neutral + expr
        if self.reopen is not None:
            local = local + self.reopen * (1.0 - press)
        pitch, yaw, roll = np.deg2rad(m[[FIELD["head_pitch"], FIELD["head_yaw"], FIELD["head_roll"]]])
        rot = _rotation(pitch, yaw, roll)
        p3 = np.concatenate([local, self.depth[:, None]], 1) - self.pivot
        moved = (p3 @ rot.T) * (1.0 + m[FIELD["head_scale"]]) + self.pivot
        moved = moved[:, :2] + np.array([m[FIELD["head_tx"]], m[FIELD["head_ty"]]]) * self.face_width
        w = self.head_weight[:, None]
        return (w * moved + (1 - w) * local - self.points).astype(np.float32)


_EXPR_FIELDS = ("jaw_open", "lip_spread", "lip_round", "smile", "blink_l", "blink_r",
                "brow_raise", "brow_furrow", "gaze_x", "gaze_y")
_EXPR_IDX = np.array([FIELD[k] for k in _EXPR_FIELDS])
_EXPR_POS = {k: i for i, k in enumerate(_EXPR_FIELDS)}
assert set(_EXPR_FIELDS) | {"lip_press"} | {f for f in MOTION_FIELDS if f.startswith("head_")} == set(MOTION_FIELDS)


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)


def build_rig(mesh: np.ndarray, size: int = 512, close_mouth: bool = True) -> Rig:
    """Rig for a [478, 3] mesh already in crop pixels; `neutral` closes an open mouth unless told not to."""
    xy, z = mesh[:, :2].astype(np.float64), mesh[:, 2].astype(np.float64)
    oval = xy[list(L.FACE_OVAL)]
    centre = oval.mean(0)
    face_w = float(oval[:, 0].max() - oval[:, 0].min())
    face_h = float(oval[:, 1].max() - oval[:, 1].min())
    head = _ring(oval, centre, HEAD_RING_SCALE)
    static = _ring(oval, centre, STATIC_RING_SCALE)
    k = np.linspace(0, size - 1, 9)
    border = np.unique(np.concatenate([np.stack([k, np.zeros_like(k)], 1), np.stack([k, np.full_like(k, size - 1)], 1),
                                       np.stack([np.zeros_like(k), k], 1), np.stack([np.full_like(k, size - 1), k], 1)]), axis=0)
    static = static[(static >= 2).all(1) & (static <= size - 3).all(1)]
    points = np.concatenate([xy, head, static, border])
    n = len(points)
    depth = np.concatenate([z, np.full(len(head), np.median(z[list(L.FACE_OVAL)])), np.zeros(n - N_MESH - len(head))])

    chin_y = xy[L.CHIN, 1]
    head_w = np.zeros(n)
    head_w[:N_MESH] = 1.0
    # head ring: hair and skull follow fully, the part under the chin (neck) less (NECK_HEAD_SHARE)
    ring_y = head[:, 1]
    head_w[N_MESH:N_MESH + len(head)] = np.clip(1.0 - (ring_y - (chin_y - 0.25 * face_h)) / (0.3 * face_h),
                                                NECK_HEAD_SHARE, 1.0)
    pivot = np.array([centre[0], centre[1] + 0.1 * face_h, np.median(z) + 0.75 * face_w])

    mouth_l, mouth_r = xy[61], xy[291]
    mouth_w = float(np.linalg.norm(mouth_r - mouth_l))
    mid_x = float((mouth_l[0] + mouth_r[0]) / 2)
    corner_y = float((mouth_l[1] + mouth_r[1]) / 2)
    bases = np.zeros((len(_EXPR_FIELDS), n, 2))
    b = lambda name: bases[_EXPR_POS[name]]
    mesh_idx = np.arange(N_MESH)
    x, y = xy[:, 0], xy[:, 1]
    lower_lip = set(L.LIPS_LOWER_OUTER[1:-1] + L.LIPS_LOWER_INNER[1:-1])
    upper_lip = set(L.LIPS_UPPER_OUTER[1:-1] + L.LIPS_UPPER_INNER[1:-1])
    lips = lower_lip | upper_lip | set(L.MOUTH_CORNERS)

    # jaw: 1.0 opens the lips by 0.17 face widths (a wide-open vowel; ~0.36 of an average mouth's
    # width): the jaw's travel goes with the skull, not with how wide the lips are; the lower face and
    # the chin follow, fading sideways
    jaw_px = 0.17 * face_w
    lip_y = xy[14, 1]
    below = np.clip((y - corner_y) / max(lip_y - corner_y, 1.0), 0, 1)
    side = np.clip(1.2 - np.abs(x - mid_x) / (0.5 * face_w), 0, 1)
    jaw = below * side * 0.85
    for i in lower_lip:
        jaw[i] = 1.0 - 0.55 * ((x[i] - mid_x) / (0.5 * mouth_w)) ** 2
    for i in L.MOUTH_CORNERS:
        jaw[i] = 0.2
    for i in upper_lip:
        jaw[i] = -0.06 * (1.0 - ((x[i] - mid_x) / (0.5 * mouth_w)) ** 2)
    b("jaw_open")[:N_MESH, 1] = jaw * jaw_px
    # the neck under the chin gives way with it: the chin slides over the neck across a wide band
    # instead of squeezing the narrow one above the head ring (which folds: a torn, blocky chin line)
    ring_below = np.clip((head[:, 1] - corner_y) / max(lip_y - corner_y, 1.0), 0, 1)
    ring_side = np.clip(1.2 - np.abs(head[:, 0] - mid_x) / (0.5 * face_w), 0, 1)
    b("jaw_open")[N_MESH:N_MESH + len(head), 1] = NECK_JAW_SHARE * ring_below * ring_side * 0.85 * jaw_px

    # lips: spread pulls the corners out, round draws them in; cheeks near the corners follow
    near_mouth = np.exp(-(((x - mid_x) / (0.6 * mouth_w)) ** 2 + ((y - corner_y) / (0.45 * mouth_w)) ** 2))
    rel = (x - mid_x) / (0.5 * mouth_w)
    for name, amount in (("lip_spread", 0.20), ("lip_round", -0.30)):
        w = np.where(np.isin(mesh_idx, list(lips)), 1.0, 0.5 * near_mouth[:N_MESH])
        b(name)[:N_MESH, 0] = amount * 0.5 * mouth_w * np.clip(rel[:N_MESH], -1.2, 1.2) * w
    # round also pushes the lips a little apart (a small rounded opening)
    b("lip_round")[list(lower_lip), 1] += 0.04 * mouth_w
    # smile: corners up and out, cheeks up
    corner_w = np.exp(-(((np.abs(x - mid_x) - 0.5 * mouth_w) / (0.3 * mouth_w)) ** 2 + ((y - corner_y) / (0.3 * mouth_w)) ** 2))
    b("smile")[:N_MESH, 1] = -0.12 * mouth_w * corner_w[:N_MESH]
    b("smile")[:N_MESH, 0] = 0.06 * mouth_w * np.sign(x - mid_x)[:N_MESH] * corner_w[:N_MESH]
    # and the cheeks: the round of each cheek (between the mouth corner and the eye) rises and bulges out
    eye_y = float(xy[list(L.RIGHT_EYE_LOWER) + list(L.LEFT_EYE_LOWER), 1].mean())
    cheek_y = eye_y + 0.45 * (corner_y - eye_y)
    cheek_w = np.exp(-(((np.abs(x - mid_x) - 0.75 * mouth_w) / (0.45 * mouth_w)) ** 2 + ((y - cheek_y) / (0.35 * mouth_w)) ** 2))
    b("smile")[:N_MESH, 1] += -0.09 * mouth_w * cheek_w[:N_MESH]
    b("smile")[:N_MESH, 0] += 0.03 * mouth_w * np.sign(x - mid_x)[:N_MESH] * cheek_w[:N_MESH]

    # eyes: a blink compresses the eye opening onto the lower lid; gaze moves the irises
    for name, uppers, lower, iris in (("blink_r", L.RIGHT_EYE_UPPER, L.RIGHT_EYE_LOWER, L.RIGHT_IRIS),
                                      ("blink_l", L.LEFT_EYE_UPPER, L.LEFT_EYE_LOWER, L.LEFT_IRIS)):
        lo = xy[list(lower)]
        low_y = lambda xs: _interp_y(lo[:, 0], lo[:, 1], xs)
        opening = float(np.median(low_y(x[list(uppers[0])]) - y[list(uppers[0])]))
        # the lids meet a little above the lower lid's rest line (it rises 6 % of the opening); the
        # margin and the iris go (almost) there: nothing folds over, and the warp never has to
        # collapse a band to nothing (the renderer paints the closed lid over the rest); the lid skin
        # above follows less
        meet_y = lambda xs: low_y(xs) - 0.06 * opening
        for ring, share in zip(uppers, (0.98, 0.6, 0.2)):
            idx = list(ring)
            b(name)[idx, 1] = share * (meet_y(x[idx]) - y[idx])
        idx = list(iris)
        b(name)[idx, 1] = 0.95 * (meet_y(x[idx]) - y[idx])
        b(name)[list(lower[1:-1]), 1] = -0.06 * opening
        eye_w = float(np.linalg.norm(lo[-1] - lo[0]))
        # a person looks about +-30 degrees sideways with the eyes alone: the iris travels ~0.28 of
        # the eye's width; vertically less, and the upper lid follows it a little
        b("gaze_x")[idx, 0] = 0.28 * eye_w
        b("gaze_y")[idx, 1] = 0.12 * eye_w
        b("gaze_y")[list(uppers[0]), 1] = 0.05 * eye_w
        # expressions around the eyes: a smile lifts the lower lid (the squint of a real smile), raised
        # brows open the eye wider, a frown lowers the upper lid
        b("smile")[list(lower[1:-1]), 1] += -0.22 * opening
        b("brow_raise")[list(uppers[0]), 1] += -0.18 * opening
        b("brow_furrow")[list(uppers[0]), 1] += 0.2 * opening

    # brows: raise lifts brows and the forehead above them; furrow pulls the inner ends in and down
    brows = list(L.RIGHT_BROW + L.LEFT_BROW)
    brow_y = y[brows].mean()
    lift = 0.045 * face_h
    above = np.clip(1.0 - (brow_y - y[:N_MESH]) / (0.35 * face_h), 0, 1) * (y[:N_MESH] < brow_y)
    b("brow_raise")[:N_MESH, 1] += -lift * 0.5 * above
    b("brow_raise")[brows, 1] = -lift
    for ring_set, share in ((L.RIGHT_EYE_UPPER, (0.0, 0.05, 0.15)), (L.LEFT_EYE_UPPER, (0.0, 0.05, 0.15))):
        for ring, s in zip(ring_set, share):
            b("brow_raise")[list(ring), 1] += -lift * s
    b("brow_furrow")[brows, 1] += 0.02 * face_h
    inner = list(L.BROW_INNER)
    b("brow_furrow")[inner, 0] = -0.035 * face_w * np.sign(x[inner] - centre[0])
    b("brow_furrow")[inner, 1] = 0.03 * face_h

    # neutral: close a mouth that is open in the photo the way a jaw closes: the lower lip and the
    # chin rise most of the way, the upper lip comes down a little
    neutral = np.zeros((n, 2))
    gaps = []
    for u_in, l_in, u_out, l_out in zip(L.LIPS_UPPER_INNER[1:-1], L.LIPS_LOWER_INNER[1:-1],
                                        L.LIPS_UPPER_OUTER[1:-1], L.LIPS_LOWER_OUTER[1:-1]):
        gap = max(0.0, y[l_in] - y[u_in]) if close_mouth else 0.0
        gaps.append(gap)
        neutral[u_in, 1] += 0.25 * gap
        neutral[l_in, 1] -= 0.75 * gap
        neutral[u_out, 1] += 0.1 * gap
        neutral[l_out, 1] -= 0.65 * gap
    lip_set = list(lips)
    others = np.setdiff1d(np.arange(N_MESH), lip_set)
    neutral[others, 1] -= 0.6 * float(np.mean(gaps)) * np.clip(jaw[others], 0, 1)
    return Rig(points=points.astype(np.float32), depth=depth.astype(np.float32), bases=bases.astype(np.float32),
               neutral=neutral.astype(np.float32), head_weight=head_w.astype(np.float32),
               pivot=pivot.astype(np.float32), face_width=face_w, mouth_width=mouth_w)


def inner_mouth(points: np.ndarray) -> np.ndarray:
    """[20, 2] inner-lip polygon of (displaced) control points, upper lip then lower reversed."""
    return np.concatenate([points[list(L.LIPS_UPPER_INNER)], points[list(L.LIPS_LOWER_INNER[1:-1])][::-1]])
