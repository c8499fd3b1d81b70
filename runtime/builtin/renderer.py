"""The builtin family's `appearance`, `warp`, `decode` and `paste` stages.

appearance (once per portrait): align a 512x512 crop on the face (the rig's coordinate frame),
build the rig, close a mouth that is open in the photo, and tabulate the warp grid.
Per frame: rig -> control-point displacement -> mesh warp (kernels/mesh_warp) -> mouth interior
and eyelids (decode) -> paste.

The warp samples the source image once. For the whole-photo output it runs in photo pixels over
the crop's footprint (the rig's displacements mapped through the crop's similarity transform);
since the rig's outer ring and the crop border never move, pixels outside the moving region come
out exactly as in the photo and the paste is a plain copy, with no seam and no double resampling.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import cv2
import numpy as np

from talkrt.kernels.mesh_warp import WarpGrid, backward_map, build_warp_grid
from talkrt.runtime.builtin import landmarks as L
from talkrt.runtime.builtin.mouth import (drawn_textures, fill_mouth_opening, paint_eyelids, paint_mouth,
                                          photo_textures, teeth_colour)
from talkrt.runtime.builtin.rig import Rig, build_rig
from talkrt.runtime.motion import FIELD

CROP_SCALE = 1.9  # crop side / face-oval extent
REOPEN_MAX_MW = 0.3  # photo openings up to this (in mouth widths) with teeth showing are kept at rest


@dataclass(frozen=True)
class RenderOptions:
    size: int = 512  # crop side
    grid: int = 128  # flow grid side at crop scale (4-pixel cells at 512)
    crop_only: bool = False  # output the 512 crop instead of the whole photo
    # sampling of moved pixels: bicubic keeps the photo's detail (Laplacian variance of the face
    # 0.88 of the photo's vs 0.46 with bilinear); the GPU mesh-warp kernel samples bilinearly
    cubic: bool = True


def align_crop(rgb: np.ndarray, mesh: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """2x3 similarity image->crop (eyes level, face centred) and the mesh in crop pixels."""
    r_eye = mesh[list(L.RIGHT_EYE_LOWER), :2].mean(0)
    l_eye = mesh[list(L.LEFT_EYE_LOWER), :2].mean(0)
    angle = np.arctan2(l_eye[1] - r_eye[1], l_eye[0] - r_eye[0])
    oval = mesh[list(L.FACE_OVAL), :2]
    centre = oval.mean(0)
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    extent = (oval - centre) @ rot.T
    span = float((extent.max(0) - extent.min(0)).max())
    scale = size / (CROP_SCALE * span)
    m = np.zeros((2, 3))
    m[:, :2] = rot * scale
    m[:, 2] = np.array([size / 2, size / 2]) - m[:, :2] @ centre
    pts = mesh[:, :2] @ m[:, :2].T + m[:, 2]
    crop_mesh = np.concatenate([pts, mesh[:, 2:3] * scale], 1).astype(np.float32)
    return m, crop_mesh


def _mouth_mask(shape: tuple[int, int], points: np.ndarray, mouth_width: float) -> np.ndarray:
    """[H, W] float32 feathered mask around the lips (where closing the mouth changed pixels)."""
    lips = points[list(L.LIPS_UPPER_OUTER + L.LIPS_LOWER_OUTER)]
    centre = lips.mean(0)
    grown = centre + (lips - centre) * 1.5
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(grown).astype(np.int32)), 255)
    k = max(3, int(0.25 * mouth_width)) | 1
    return cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32) / 255.0


def _moved_mask(backward: np.ndarray, points: np.ndarray, mouth_width: float) -> np.ndarray:
    """[H, W] float32 feathered mask of where a backward map moves pixels by more than a tenth of a
    pixel (closing the mouth moves the lips, and the chin and cheeks with them), and the lips."""
    h, w = backward.shape[:2]
    ident = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    moved = (np.abs(backward - ident).max(-1) > 0.1).astype(np.uint8) * 255
    k = max(3, int(0.1 * mouth_width)) | 1
    moved = cv2.dilate(moved, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    mask = np.maximum(cv2.GaussianBlur(moved, (k, k), 0).astype(np.float32) / 255.0,
                      _mouth_mask((h, w), points, mouth_width))
    return mask


class BuiltinRenderer:
    """Renders frames of one portrait; construct once, then call `render` per motion vector."""

    def __init__(self, rgb: np.ndarray, mesh: np.ndarray, options: RenderOptions = RenderOptions()):
        self.options = options
        size = options.size
        self.affine, crop_mesh = align_crop(rgb, mesh, size)
        crop = cv2.warpAffine(rgb, self.affine, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        photo_crop = crop
        rig = build_rig(crop_mesh, size)
        # the photo's own teeth where its mouth shows them, else drawn ones in the photo's teeth colour
        self.mouth = photo_textures(crop, rig.points, rig.mouth_width) or drawn_textures(teeth_colour(crop, rig.points))
        source = rgb
        # A mouth open in the photo is closed once, here, on a fine grid, and that closed face is
        # the rest pose: the per-frame warp then never has to collapse a region.
        photo_mouth = False
        # lips a pixel or two apart in the mesh are closed lips: leave them (and the photo) alone
        self.closed_by_warp = bool(np.abs(rig.neutral).max() > 0.03 * rig.mouth_width)
        if not self.closed_by_warp:
            rig = build_rig(crop_mesh, size, close_mouth=False)
        else:
            filled = fill_mouth_opening(crop, rig.points, rig.mouth_width)
            fine = build_warp_grid(rig.points, size, step=2)
            m = backward_map(fine, rig.neutral, iterations=6)
            crop = cv2.remap(filled, m[..., 0], m[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            if not options.crop_only:  # put the closed mouth back into the photo, where closing moved pixels
                h, w = rgb.shape[:2]
                back = cv2.warpAffine(crop, self.affine, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC,
                                      borderMode=cv2.BORDER_REPLICATE)
                alpha = cv2.warpAffine(_moved_mask(m, rig.points, rig.mouth_width), self.affine, (w, h),
                                       flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)[..., None]
                source = np.clip(rgb + alpha * (back.astype(np.float32) - rgb), 0, 255).astype(np.uint8)
            crop_mesh = crop_mesh.copy()
            crop_mesh[:, :2] += rig.neutral[: len(crop_mesh)]
            closing = rig.neutral
            rig = build_rig(crop_mesh, size, close_mouth=False)
            if self.mouth.from_photo and self.mouth.shown < REOPEN_MAX_MW:
                # a smile with teeth (not a wide-open mouth) stays the face's rest expression
                rig.reopen = np.zeros_like(rig.points)
                rig.reopen[:len(crop_mesh)] = -closing[:len(crop_mesh)]
                # and near rest the mouth is the photo's own pixels, warped like the rest of the face
                # (the reopened, repainted mouth is close but not the same: identity and silence suffer)
                photo_mouth = True
        self.rig: Rig = rig
        self.photo_source = None  # the unclosed photo, for the mouth near rest (see photo_mouth)
        # closed lips may sit a pixel or two apart in the mesh: paint an interior only past that
        inner_gap = rig.points[list(L.LIPS_LOWER_INNER[1:-1]), 1] - rig.points[list(L.LIPS_UPPER_INNER[1:-1]), 1]
        self.rest_gap = float(max(inner_gap.max(), 0.0))
        step = max(1, size // options.grid)

        if options.crop_only:
            self.source = crop
            if photo_mouth:
                self.photo_source = photo_crop
            self.roi = (0, 0, size, size)
            self.lin = np.eye(2, dtype=np.float32)  # crop displacement -> output displacement
            self.points = rig.points
            self.scale = 1.0
            self.canvas = np.empty((size, size, 3), np.uint8)
            self.work = self.canvas
        else:
            h, w = rgb.shape[:2]
            inv = cv2.invertAffineTransform(self.affine)
            corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
            x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
            x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [w, h])
            self.roi = (int(x0), int(y0), int(x1), int(y1))
            self.lin = inv[:, :2].astype(np.float32)
            self.points = (rig.points @ inv[:, :2].T + inv[:, 2] - [x0, y0]).astype(np.float32)
            self.scale = float(np.sqrt(abs(np.linalg.det(inv[:, :2]))))  # photo px per crop px
            step = max(1, int(round(step * self.scale)))
            self.source = np.ascontiguousarray(source[y0:y1, x0:x1])
            if photo_mouth:
                self.photo_source = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            self.canvas = source.copy()
            self.work = np.empty_like(self.source)
        x0, y0, x1, y1 = self.roi
        self.grid: WarpGrid = build_warp_grid(self.points, x1 - x0, y1 - y0, step=step)
        self._frame_disp = None
        if self.photo_source is not None:
            # the photo's own control points (mouth open as photographed) and their warp grid
            self.reopen_out = (rig.reopen @ self.lin.T).astype(np.float32)
            self.photo_grid = build_warp_grid(self.points + self.reopen_out, x1 - x0, y1 - y0, step=step)
            mask = _mouth_mask((y1 - y0, x1 - x0), self.points, rig.mouth_width * self.scale)
            ys, xs = np.nonzero(mask > 0.01)
            self.mouth_box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
            by0, by1, bx0, bx1 = self.mouth_box
            self.mouth_alpha = mask[by0:by1, bx0:bx1, None]

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of output frames."""
        h, w = self.canvas.shape[:2]
        return w, h

    def fork(self) -> "BuiltinRenderer":
        """A renderer for another stream: shares the portrait's tables, owns its frame buffers."""
        other = copy.copy(self)
        if self.options.crop_only:
            other.canvas = np.empty_like(self.canvas)
            other.work = other.canvas
        else:
            other.canvas = self.canvas.copy()
            other.work = np.empty_like(self.work)
        return other

    # per-frame stages ------------------------------------------------------------------------
    def warp(self, motion: np.ndarray) -> np.ndarray:
        """Warp the source for one motion vector; returns the displaced control points (output px)."""
        disp = self.rig.displace(motion) @ self.lin.T
        m = backward_map(self.grid, disp)
        cv2.remap(self.source, m[..., 0], m[..., 1], cv2.INTER_CUBIC if self.options.cubic else cv2.INTER_LINEAR,
                  dst=self.work, borderMode=cv2.BORDER_REFLECT)
        self._frame_disp = disp
        return self.points + disp

    def decode(self, points: np.ndarray, motion: np.ndarray) -> None:
        paint_mouth(self.work, points, self.rig.mouth_width * self.scale, self.mouth,
                    min_gap_px=0.8 + self.rest_gap * self.scale, seam=self.closed_by_warp)
        paint_eyelids(self.work, points, motion[FIELD["blink_r"]], motion[FIELD["blink_l"]], rest=self.points)
        if self.photo_source is not None and self._frame_disp is not None:
            self._photo_mouth(motion)

    def _photo_mouth(self, motion: np.ndarray) -> None:
        """Blend the photo's own mouth, warped by this frame's map, in as the mouth nears its rest
        shape: fully at rest, not at all past a small jaw opening, lip press or lip shape."""
        off = (abs(float(motion[FIELD["jaw_open"]])) / 0.12 + abs(float(motion[FIELD["lip_press"]])) / 0.25
               + (abs(float(motion[FIELD["lip_round"]])) + abs(float(motion[FIELD["lip_spread"]]))) / 0.3
               + abs(float(motion[FIELD["smile"]])) / 0.4)
        weight = float(np.clip(1.0 - off, 0.0, 1.0))
        if weight <= 0.01:
            return
        by0, by1, bx0, bx1 = self.mouth_box
        m = backward_map(self.photo_grid, self._frame_disp - self.reopen_out)[by0:by1, bx0:bx1]
        photo = cv2.remap(self.photo_source, m[..., 0], m[..., 1],
                          cv2.INTER_CUBIC if self.options.cubic else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        region = self.work[by0:by1, bx0:bx1]
        a = weight * self.mouth_alpha
        region[:] = (region * (1 - a) + photo * a).astype(np.uint8)

    def paste(self) -> np.ndarray:
        if self.work is not self.canvas:
            x0, y0, x1, y1 = self.roi
            self.canvas[y0:y1, x0:x1] = self.work
        return self.canvas

    def render(self, motion: np.ndarray) -> np.ndarray:
        """One output frame (a view of an internal buffer, valid until the next call)."""
        points = self.warp(motion)
        self.decode(points, motion)
        return self.paste()
