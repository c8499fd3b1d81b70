"""The builtin family's `appearance`, `warp`, `decode` and `paste` stages.

appearance (once per portrait): align a 512x512 crop on the face, build the rig and the warp grid,
the paste mask and the output canvas. Per frame: rig -> control-point displacement -> mesh warp of
the crop (kernels/mesh_warp) -> mouth interior (decode) -> inverse-affine paste into the photo.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkrt.kernels.mesh_warp import WarpGrid, backward_map, build_warp_grid
from talkrt.runtime.builtin import landmarks as L
from talkrt.runtime.builtin.mouth import fill_mouth_opening, paint_eyelids, paint_mouth, teeth_colour
from talkrt.runtime.builtin.rig import Rig, build_rig
from talkrt.runtime.motion import FIELD

CROP_SCALE = 1.9  # crop side / face-oval extent


@dataclass(frozen=True)
class RenderOptions:
    size: int = 512  # crop side
    grid: int = 128  # flow grid side (4-pixel cells at 512)
    crop_only: bool = False  # output the 512 crop instead of the whole photo


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


def _feather_mask(size: int) -> np.ndarray:
    """[size, size] float32: 1 inside, falling smoothly to 0 over the outer 8% of the crop."""
    r = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) / (0.08 * size)
    ramp = np.clip(r, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return np.minimum(ramp[:, None], ramp[None, :])


class BuiltinRenderer:
    """Renders frames of one portrait; construct once, then call `render` per motion vector."""

    def __init__(self, rgb: np.ndarray, mesh: np.ndarray, options: RenderOptions = RenderOptions()):
        self.options = options
        size = options.size
        self.affine, crop_mesh = align_crop(rgb, mesh, size)
        crop = cv2.warpAffine(rgb, self.affine, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        rig = build_rig(crop_mesh, size)
        self.teeth_rgb = teeth_colour(crop, rig.points)
        # A mouth open in the photo is closed once, here, with a 2-pixel flow grid, and that closed
        # face becomes the rest pose: the per-frame warp then never has to collapse a region.
        if np.abs(rig.neutral).max() > 0.5:
            crop = fill_mouth_opening(crop, rig.points, rig.mouth_width)
            fine = build_warp_grid(rig.points, size, size // 2)
            m = backward_map(fine, rig.neutral, iterations=6)
            crop = cv2.remap(crop, m[..., 0], m[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            crop_mesh = crop_mesh.copy()
            crop_mesh[:, :2] += rig.neutral[: len(crop_mesh)]
            rig = build_rig(crop_mesh, size, close_mouth=False)
        self.crop = crop
        self.rig: Rig = rig
        self.grid: WarpGrid = build_warp_grid(self.rig.points, size, options.grid)
        self.work = np.empty((size, size, 3), np.uint8)
        if options.crop_only:
            self.canvas = self.work
            return
        # paste: the crop's footprint in the photo, clipped; a feathered mask warped into it once
        h, w = rgb.shape[:2]
        self.canvas = rgb.copy()
        inv = cv2.invertAffineTransform(self.affine)
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [w, h])
        self.roi = (x0, y0, x1, y1)
        self.to_roi = self.affine.copy()  # roi pixel -> crop pixel (used with WARP_INVERSE_MAP)
        self.to_roi[:, 2] += self.affine[:, :2] @ np.array([x0, y0])
        mask = cv2.warpAffine(_feather_mask(size), self.to_roi, (x1 - x0, y1 - y0),
                              flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderValue=0)
        self.mask = mask[..., None].astype(np.float32)
        self.base_roi = rgb[y0:y1, x0:x1].astype(np.float32)

    # per-frame stages ------------------------------------------------------------------------
    def warp(self, motion: np.ndarray) -> np.ndarray:
        """Warp the crop for one motion vector; returns the displaced control points."""
        disp = self.rig.displace(motion)
        m = backward_map(self.grid, disp)
        cv2.remap(self.crop, m[..., 0], m[..., 1], cv2.INTER_LINEAR, dst=self.work, borderMode=cv2.BORDER_REFLECT)
        return self.rig.points + disp

    def decode(self, points: np.ndarray, motion: np.ndarray) -> None:
        paint_mouth(self.work, points, self.rig.mouth_width, self.teeth_rgb)
        paint_eyelids(self.work, points, motion[FIELD["blink_r"]], motion[FIELD["blink_l"]])

    def paste(self) -> np.ndarray:
        if self.options.crop_only:
            return self.work
        x0, y0, x1, y1 = self.roi
        warped = cv2.warpAffine(self.work, self.to_roi, (x1 - x0, y1 - y0),
                                flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        blended = self.base_roi + self.mask * (warped.astype(np.float32) - self.base_roi)
        self.canvas[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return self.canvas

    def render(self, motion: np.ndarray) -> np.ndarray:
        """One output frame (a view of an internal buffer, valid until the next call)."""
        points = self.warp(motion)
        self.decode(points, motion)
        return self.paste()
