"""The liveportrait family on ONNX Runtime: a session per portrait, frames from speech.

face (our mesh) -> LivePortrait crop (512, scale 2.3, vy -0.125) -> appearance: F and M once ->
audio_enc (HuBERT + JoyVASA map, 50 Hz -> 25 fps) -> motion (JoyVASA) -> relative driving ->
stitching -> warp (W) -> decode (G) -> paste (feathered, inverse affine) -> frames.
Needs the folder written by talkrt.export.export_liveportrait.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from talkrt.runtime.audio_io import SAMPLE_RATE_HZ
from talkrt.runtime.engine import open_engine
from talkrt.runtime.errors import TalkrtError
from talkrt.runtime.face import FaceAnalyzer
from talkrt.runtime.liveportrait import keypoints as kpm
from talkrt.runtime.liveportrait.motion import JoyVASASampler, denormalize, load_template

CROP_SIZE = 512
CROP_SCALE = 2.3
CROP_VY = -0.125
MOTION_FPS = 25.0
STAGE_FILES = ("appearance", "motion_extractor", "warp", "decode", "stitching", "audio_enc", "motion")


def lp_crop(rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """2x3 image->crop transform framing the face as LivePortrait's cropper does: landmarks from the
    brows down, rotated upright by the eye line, square of 2.3x their extent, shifted up by 0.125."""
    pts = mesh[:468, :2].astype(np.float64)
    r_eye, l_eye = pts[[33, 133]].mean(0), pts[[362, 263]].mean(0)
    angle = np.arctan2(l_eye[1] - r_eye[1], l_eye[0] - r_eye[0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    up = pts @ rot.T
    brow = up[[70, 63, 105, 66, 107, 300, 293, 334, 296, 336], 1].mean()
    face = up[up[:, 1] >= brow]
    lo, hi = face.min(0), face.max(0)
    size = float((hi - lo).max()) * CROP_SCALE
    centre = (lo + hi) / 2 + np.array([0.0, CROP_VY * size])
    scale = CROP_SIZE / size
    m = np.zeros((2, 3))
    m[:, :2] = rot * scale
    m[:, 2] = CROP_SIZE / 2 - scale * centre
    return m


def _paste_mask(size: int) -> np.ndarray:
    r = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) / (0.1 * size)
    ramp = np.clip(r, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return np.minimum(ramp[:, None], ramp[None, :])


def source_image(photo: np.ndarray, affine: np.ndarray, side: int = 256) -> np.ndarray:
    """F's and M's input: the crop, resized to side x side, [1, 3, side, side] float32 in [0, 1]."""
    crop = cv2.warpAffine(photo, affine, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    x = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    return x.transpose(2, 0, 1)[None] / 255.0


class Paster:
    """Puts a generated 512 face back into the photo: inverse affine into the face's bounding box,
    blended through the warped feather mask."""

    def __init__(self, photo: np.ndarray, affine: np.ndarray):
        h, w = photo.shape[:2]
        inv = cv2.invertAffineTransform(affine)
        corners = np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float) @ inv[:, :2].T + inv[:, 2]
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [w, h])
        self.roi = (int(x0), int(y0), int(x1), int(y1))
        self.to_roi = affine.copy()
        self.to_roi[:, 2] += affine[:, :2] @ np.array([x0, y0])
        self.mask = cv2.warpAffine(_paste_mask(CROP_SIZE), self.to_roi, (x1 - x0, y1 - y0),
                                   flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)[..., None]
        self.base = photo[y0:y1, x0:x1].astype(np.float32)

    def paste(self, canvas: np.ndarray, face: np.ndarray) -> None:
        x0, y0, x1, y1 = self.roi
        back = cv2.warpAffine(face, self.to_roi, (x1 - x0, y1 - y0), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        canvas[y0:y1, x0:x1] = np.clip(self.base + self.mask * (back - self.base) + 0.5, 0, 255).astype(np.uint8)


def relative_driving(src: dict, r_s: np.ndarray, d: dict, first: dict, r_rel_i: np.ndarray, i: int) -> np.ndarray:
    """LivePortrait's relative driving, before stitching: the source keypoints moved by frame i's
    change against the clip's first frame (`first`: exp, scale, t of that frame, one row each);
    r_rel_i = R_d_i @ R_d_0^T."""
    r_new = r_rel_i @ r_s
    exp = src["exp"] + (d["exp"][i:i + 1] - first["exp"])
    scale = src["scale"] * (d["scale"][i:i + 1] / first["scale"])
    t = src["t"] + (d["t"][i:i + 1] - first["t"])
    t[:, 2] = 0
    return kpm.transform_keypoints(src["kp"], r_new, exp, scale, t)


def check_folder(folder: Path) -> None:
    missing = [f"{n}.onnx" for n in STAGE_FILES if not (folder / f"{n}.onnx").is_file()]
    if missing:
        raise TalkrtError(folder, f"exported model folder lacks {', '.join(missing)}")


class LivePortraitSession:
    """Same interface as the builtin Session: frame_size, motion_for(audio), frames(motion)."""

    def __init__(self, photo: np.ndarray, onnx_dir: Path, analyzer: FaceAnalyzer, options, name: str, times):
        face_index, crop_only, backend, threads = options.face_index, options.crop, options.backend, options.threads
        self.options = options
        check_folder(onnx_dir)
        self.times = times
        self.photo, self.crop_only = photo, crop_only
        t = time.perf_counter()
        mesh = analyzer.analyze(photo, face_index, name).points
        t = times.add("face", t)
        eng = lambda n: open_engine(onnx_dir / f"{n}.onnx", backend, threads, options.profile)
        self.f, self.m, self.w, self.g = eng("appearance"), eng("motion_extractor"), eng("warp"), eng("decode")
        self.stitch = eng("stitching")
        self.audio_enc = eng("audio_enc")
        self.sampler = JoyVASASampler(onnx_dir, backend, threads, options.profile)
        self.template = load_template(onnx_dir)
        self.affine = lp_crop(photo, mesh)
        x = source_image(photo, self.affine)
        self.feature_3d = self.f.run({"image": x})["feature_3d"]
        info = self.m.run({"image": x})
        self.src = {"pitch": kpm.bins_to_degrees(info["pitch"]), "yaw": kpm.bins_to_degrees(info["yaw"]),
                    "roll": kpm.bins_to_degrees(info["roll"]), "exp": info["exp"], "scale": info["scale"], "t": info["t"],
                    "kp": info["kp"]}
        self.r_s = kpm.rotation_matrix(self.src["pitch"], self.src["yaw"], self.src["roll"])
        self.x_s = kpm.transform_keypoints(info["kp"], self.r_s, info["exp"], info["scale"], info["t"])
        if crop_only:
            self.canvas = np.empty((CROP_SIZE, CROP_SIZE, 3), np.uint8)
        else:
            self.paster = Paster(photo, self.affine)
            self.canvas = photo.copy()
        times.add("appearance", t)

    @property
    def frame_size(self) -> tuple[int, int]:
        h, w = self.canvas.shape[:2]
        return w, h

    def motion_for(self, audio: np.ndarray):
        fps, seed, cfg_scale = self.options.fps, self.options.controls.seed, self.options.cfg_scale
        t = time.perf_counter()
        feats = self.audio_enc.run({"waveform": audio[None].astype(np.float32)})["audio_features"][0]  # [T50, d]
        n25 = max(1, int(round(len(audio) / SAMPLE_RATE_HZ * MOTION_FPS)))
        src = np.linspace(0, len(feats) - 1, n25)
        feats25 = np.stack([np.interp(src, np.arange(len(feats)), feats[:, i]) for i in range(feats.shape[1])], 1)
        t = self.times.add("audio_enc", t)
        motion = self.sampler.generate(feats25.astype(np.float32), seed=seed, cfg_scale=cfg_scale)
        n_out = max(1, int(round(len(audio) / SAMPLE_RATE_HZ * fps)))
        pick = np.linspace(0, len(motion) - 1, n_out)
        motion = np.stack([np.interp(pick, np.arange(len(motion)), motion[:, i]) for i in range(motion.shape[1])], 1)
        self.times.add("motion", t)
        return None, denormalize(motion.astype(np.float32), self.template)

    def _driving(self, d: dict, first: dict, r_rel: np.ndarray, i: int) -> np.ndarray:
        """Relative driving against the clip's first frame, then stitching. r_rel[i] = R_d_i @ R_d_0^T,
        computed once for the clip."""
        x_d = relative_driving(self.src, self.r_s, d, first, r_rel[i:i + 1], i)
        delta = self.stitch.run({"x": np.concatenate([self.x_s.reshape(1, -1), x_d.reshape(1, -1)], 1)})["delta"]
        return kpm.apply_stitching(delta, x_d)

    def frames(self, driving: dict) -> Iterator[np.ndarray]:
        r_d = kpm.rotation_matrix(driving["pitch"], driving["yaw"], driving["roll"])  # [T, 3, 3]
        r_rel = r_d @ r_d[:1].transpose(0, 2, 1)
        first = {k: driving[k][:1] for k in ("exp", "scale", "t")}
        for i in range(len(driving["exp"])):
            t = time.perf_counter()
            x_d = self._driving(driving, first, r_rel, i)
            warped = self.w.run({"feature_3d": self.feature_3d, "kp_driving": x_d, "kp_source": self.x_s})["warped"]
            t = self.times.add("warp", t)
            image = self.g.run({"warped": warped})["image"][0]
            face = np.clip(image.transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
            t = self.times.add("decode", t)
            if self.crop_only:
                self.canvas[:] = face
            else:
                self.paster.paste(self.canvas, face)
            self.times.add("paste", t)
            yield self.canvas
