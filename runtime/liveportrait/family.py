"""The liveportrait family behind the family protocol (runtime/avatar.py).

prepare: our face mesh -> LivePortrait crop -> F (appearance volume) and M (source keypoints), once;
the avatar file keeps the photo, the crop transform, the volume and the keypoints.
motion stream: HuBERT (`audio_enc`) over each window's audio with one second of context before it,
pooled 50 Hz -> 25 fps, then JoyVASA windows that commit `joyvasa_stride` frames, see the profile's
look-ahead, repeat the last real feature after it, and condition on the 10 frames before.
renderer: relative driving anchored on the stream's first frame -> stitching -> W -> G -> paste.
"""
from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from talkrt.runtime.audio_enc import frames_for
from talkrt.runtime.engine import open_engine, to_host
from talkrt.runtime.errors import OptionError
from talkrt.runtime.liveportrait import keypoints as kpm
from talkrt.runtime.liveportrait.motion import JoyVASASampler, denormalize, load_template
from talkrt.runtime.liveportrait.pipeline import CROP_SIZE, MOTION_FPS, Paster, check_folder, lp_crop, \
    relative_driving, source_image
from talkrt.runtime.motion import RateConverter, RatedMotionStream
from talkrt.runtime.stream import sample_of_frame

TORCH_DEVICE: str | None = None  # torch backend device; None = the profile's CUDA device (tests set "cpu")
CONTEXT_FRAMES = 25  # audio before a window that HuBERT sees (1 s at 25 fps)
SOURCE_KEYS = ("feature_3d", "kp", "exp", "scale", "t", "pitch", "yaw", "roll")


def _folder(options, backend: str = "ort") -> Path:
    from talkrt.runtime.liveportrait.weights import onnx_folder

    if not options.weights:
        raise OptionError("--model liveportrait", "needs --weights DIR")
    folder = onnx_folder(Path(options.weights))
    check_folder(folder, backend)
    return folder


def _engines(avatar, names: tuple[str, ...], options=None, settings=None) -> dict:
    """Stage engines of the profile's backend, opened once per avatar (`avatar` None: not kept)."""
    options, s = options or avatar.options, settings or avatar.settings
    share = avatar.shared if avatar is not None else (lambda key, build: build())
    if s.backend == "torch":
        from talkrt.runtime.backends.torch_liveportrait import torch_engines

        return {n: share(f"engine:{n}", lambda n=n: torch_engines(_folder(options, "torch"), n, s, TORCH_DEVICE))
                for n in names}
    return {n: share(f"engine:{n}", lambda n=n: open_engine(_folder(options, s.backend) / f"{n}.onnx", s.backend,
                                                             s.threads, s.name)) for n in names}


class LivePortraitRenderer:
    """One stream's renderer: a 70-d normalised motion row -> a frame (the crop or the whole photo)."""

    def __init__(self, avatar):
        d = avatar.data
        self.engines = _engines(avatar, ("warp", "decode", "stitching"))
        folder = lambda: _folder(avatar.options, avatar.settings.backend)
        self.template = avatar.shared("template", lambda: load_template(folder()))
        self.src = {k: d[k] for k in SOURCE_KEYS}
        self.r_s = kpm.rotation_matrix(d["pitch"], d["yaw"], d["roll"])
        self.x_s = kpm.transform_keypoints(d["kp"], self.r_s, d["exp"], d["scale"], d["t"])
        self.crop_only = avatar.options.crop
        if self.crop_only:
            self.canvas = np.empty((CROP_SIZE, CROP_SIZE, 3), np.uint8)
        else:
            self.paster = avatar.shared("paster", lambda: Paster(d["photo"], d["affine"]))
            self.canvas = d["photo"].copy()
        self.anchor: dict | None = None  # the stream's first driving frame (relative driving)
        self.lock = avatar.shared("render_lock", threading.Lock) if avatar.settings.backend != "ort" else nullcontext()
        if hasattr(self.engines["warp"], "keep_on_device"):  # trt: W's volume goes to G on the device
            self.engines["warp"].keep_on_device.add("warped")

    @property
    def frame_size(self) -> tuple[int, int]:
        h, w = self.canvas.shape[:2]
        return w, h

    def render(self, row: np.ndarray) -> np.ndarray:
        d = denormalize(row[None].astype(np.float32), self.template)
        r_d = kpm.rotation_matrix(d["pitch"], d["yaw"], d["roll"])
        if self.anchor is None:
            self.anchor = {"exp": d["exp"], "scale": d["scale"], "t": d["t"], "r": r_d}
        x_d = relative_driving(self.src, self.r_s, d, self.anchor, r_d @ self.anchor["r"].transpose(0, 2, 1), 0)
        with self.lock:  # shared trt contexts / torch graph buffers: one frame at a time per avatar
            face = self._face(x_d)
        if self.crop_only:
            self.canvas[:] = face
        else:
            self.paster.paste(self.canvas, face)
        return self.canvas

    def _face(self, x_d: np.ndarray) -> np.ndarray:
        e = self.engines
        delta = e["stitching"].run({"x": np.concatenate([self.x_s.reshape(1, -1), x_d.reshape(1, -1)], 1)})["delta"]
        x_d = kpm.apply_stitching(to_host(delta), x_d)
        # W -> G: on the torch backend `warped` is a device tensor and stays there
        warped = e["warp"].run({"feature_3d": self.src["feature_3d"], "kp_driving": x_d, "kp_source": self.x_s})["warped"]
        image = to_host(e["decode"].run({"warped": warped})["image"])[0]
        return np.clip(image.transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)


class LivePortraitMotionStream(RatedMotionStream):
    """audio timeline -> JoyVASA motion rows (70-d, normalised) at the avatar's fps, incrementally."""

    def __init__(self, avatar, controls, settings):
        self.fps = avatar.fps
        self.sampler = avatar.shared("sampler", lambda: JoyVASASampler(
            _folder(avatar.options, avatar.settings.backend), engine=_engines(avatar, ("motion",))["motion"]))
        self.audio_enc = _engines(avatar, ("audio_enc",))["audio_enc"]
        self.lock = avatar.shared("motion_lock", threading.Lock) if settings.backend != "ort" else nullcontext()
        self.stride = min(settings.stream.joyvasa_stride, self.sampler.n)
        self.ahead = int(round(settings.stream.lookahead_ms / 1000 * MOTION_FPS))
        self.seed, self.cfg_scale = controls.seed, avatar.options.cfg_scale
        self.x_T = np.random.default_rng([self.seed, 0]).standard_normal((self.sampler.n, self.sampler.d)).astype(np.float32)
        self.next = 0  # first model frame not yet committed
        self.prev_m, self.prev_a = self.sampler.start_motion, self.sampler.start_audio
        self.history: list[tuple[int, np.ndarray, np.ndarray]] = []  # (frame, motion, audio) of recent windows
        self.rate = RateConverter(MOTION_FPS, self.fps, self.sampler.d)

    def samples_needed(self) -> int:
        return sample_of_frame(self.next + self.stride + self.ahead, MOTION_FPS)

    def samples_held(self) -> int:
        return sample_of_frame(self.next - CONTEXT_FRAMES, MOTION_FPS)

    def _features(self, audio, s: int, stop: int) -> np.ndarray:
        """HuBERT features of model frames s..stop-1 ([n, d]), from audio with CONTEXT_FRAMES before."""
        a0 = sample_of_frame(s - CONTEXT_FRAMES, MOTION_FPS)
        wave = audio.read(a0, sample_of_frame(stop, MOTION_FPS))
        f50 = to_host(self.audio_enc.run({"waveform": wave[None]})["audio_features"])[0]  # [~2 per frame, d]
        idx = 2 * np.arange(CONTEXT_FRAMES, CONTEXT_FRAMES + stop - s)
        lo, hi = np.minimum(idx, len(f50) - 1), np.minimum(idx + 1, len(f50) - 1)
        return ((f50[lo] + f50[hi]) * 0.5).astype(np.float32)

    def advance(self, audio) -> np.ndarray:
        n, k = self.sampler.n, self.sampler.k
        total_model = frames_for(audio.available, MOTION_FPS) if audio.ended else None
        while True:
            s = self.next
            end = s + self.stride + self.ahead
            if total_model is not None:
                if s >= total_model:
                    break
                end = min(end, total_model)
            elif sample_of_frame(end, MOTION_FPS) > audio.available:
                break
            with self.lock:  # engines shared by the avatar's streams
                feats = self._features(audio, s, end)
            window = np.concatenate([feats, np.repeat(feats[-1:], n - len(feats), 0)]) if len(feats) < n else feats[:n]
            noise = np.random.default_rng([self.seed, 1, s]).standard_normal(
                (self.sampler.steps, n, self.sampler.d)).astype(np.float32)
            with self.lock:
                m = self.sampler.window(window, self.prev_m, self.prev_a, self.x_T, noise, self.cfg_scale)
            commit = min(self.stride, end - s)
            self.history.append((s, m[:commit], window[:commit]))
            self.history = self.history[-(k + 1):]
            ctx_m = np.concatenate([h[1] for h in self.history])
            ctx_a = np.concatenate([h[2] for h in self.history])
            if len(ctx_m) >= k:
                self.prev_m, self.prev_a = ctx_m[-k:], ctx_a[-k:]
            else:  # fewer than K real frames yet: the start features fill the front
                self.prev_m = np.concatenate([self.sampler.start_motion, ctx_m])[-k:]
                self.prev_a = np.concatenate([self.sampler.start_audio, ctx_a])[-k:]
            self.rate.push(m[:commit])
            self.next = s + commit
        return self.rate.take(total_model, self.total_frames(audio))

    def rewind(self, frame: int, audio) -> None:
        model_frame = self.rate.rewind(frame)
        self.history = [(s, m[:max(0, model_frame - s)], a[:max(0, model_frame - s)])
                        for s, m, a in self.history if s < model_frame]
        if self.history:
            ctx_m = np.concatenate([h[1] for h in self.history])
            ctx_a = np.concatenate([h[2] for h in self.history])
            self.prev_m = np.concatenate([self.sampler.start_motion, ctx_m])[-self.sampler.k:]
            self.prev_a = np.concatenate([self.sampler.start_audio, ctx_a])[-self.sampler.k:]
        else:
            self.prev_m, self.prev_a = self.sampler.start_motion, self.sampler.start_audio
        self.next = model_frame


class LivePortraitFamily:
    name = "liveportrait"
    # what export/trt_build.py builds for this family: stage -> ONNX files, and batch multiples
    engine_stages = {"appearance": ("appearance.onnx", "motion_extractor.onnx"), "warp": ("warp.onnx",),
                     "decode": ("decode.onnx",),
                     "stitching": ("stitching.onnx", "stitching_lip.onnx", "stitching_eye.onnx"),
                     "motion": ("motion.onnx",), "audio_enc": ("audio_enc.onnx",)}
    engine_batch_scale = {"motion": 2}  # classifier-free guidance: conditional + unconditional

    def prepare(self, photo: np.ndarray, options, settings, analyzer, name: str) -> dict[str, np.ndarray]:
        mesh = analyzer.analyze(photo, options.face_index, name).points
        affine = lp_crop(photo, mesh)
        x = source_image(photo, affine)
        e = _engines(None, ("appearance", "motion_extractor"), options, settings)
        info = {k: to_host(v) for k, v in e["motion_extractor"].run({"image": x}).items()}
        data = {"photo": photo, "affine": affine.astype(np.float64),
                "feature_3d": to_host(e["appearance"].run({"image": x})["feature_3d"]).astype(np.float32)}
        data.update({k: info[k].astype(np.float32) for k in ("kp", "exp", "scale", "t")})
        data.update({k: kpm.bins_to_degrees(info[k]).astype(np.float32) for k in ("pitch", "yaw", "roll")})
        return data

    def renderer(self, avatar) -> LivePortraitRenderer:
        return LivePortraitRenderer(avatar)

    def motion_stream(self, avatar, controls, settings) -> LivePortraitMotionStream:
        return LivePortraitMotionStream(avatar, controls, settings)


FAMILY = LivePortraitFamily()
