"""`talkrt eval`: measure one talking-face video (or a folder of them) against its portrait and speech.

Two passes over the video: the first tracks dlib's 68 landmarks on every frame (and the face
embedding on every `identity_every`-th), the second pulls the frames shown in the contact sheet.
Writes NAME.json (all numbers and the per-frame series), NAME_report.png (plots) and NAME_sheet.png.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkrt.runtime.errors import InputError, OptionError
from talkrt.runtime.evaluate import metrics as M

VIDEO_SUFFIXES = (".mp4", ".y4m", ".mkv", ".mov", ".webm", ".avi")
MAX_FRAMES = 15000  # 10 minutes at 25 fps


@dataclass(frozen=True)
class EvalOptions:
    identity_every: int = 5  # embed every n-th frame (the embedding is the slow part)
    report: bool = True  # write the plots and the contact sheet besides the JSON


def _frames(path: Path):
    """(fps, iterator of RGB frames) of a video; InputError when it cannot be decoded."""
    import av

    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError, OSError, UnicodeDecodeError):
        raise InputError(path, "is not a video talkrt eval can read") from None
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 25.0

    def gen():
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError:
            raise InputError(path, "the video is damaged part way through") from None
        finally:
            container.close()
    return fps, gen()


def _scaled_photo(photo: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    if abs(scale - 1) < 0.02:
        return photo
    h, w = photo.shape[:2]
    return cv2.resize(photo, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


REST_COPIES = 8  # noisy copies of the photo whose dlib aperture makes the rest reference


def rest_aperture(faces, photo: np.ndarray, face) -> float:
    """The photo's mouth aperture as dlib reads it on a video frame of that photo: the median over the
    photo and REST_COPIES copies with +-1 grey level of seeded noise (what any encoding adds). dlib
    reads a pristine photo at the low end: on the example portrait 0.139 IOD, its noisy copies
    0.146-0.164 (mean 0.152), which alone made a perfect rest read as an open mouth in pauses."""
    values = [float(M.aperture(face.landmarks[None])[0])]
    for k in range(REST_COPIES):
        noise = np.random.default_rng([k, 91]).integers(-1, 2, photo.shape)
        copy = np.clip(photo.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        values.append(float(M.aperture(faces.find(copy, "the portrait").landmarks[None])[0]))
    return float(np.median(values))


def evaluate(video: str | Path, portrait: str | Path, audio: str | Path, text: str | None = None,
             out_dir: str | Path | None = None, options: EvalOptions = EvalOptions()) -> dict:
    """All measures of one video as a dict (also written to out_dir/NAME.json when out_dir is set)."""
    import cv2

    from talkrt.runtime.audio_io import SAMPLE_RATE_HZ, load_audio
    from talkrt.runtime.evaluate.face68 import Face68
    from talkrt.runtime.evaluate.phones import phones_for
    from talkrt.runtime.image_io import load_image

    video = Path(video)
    if not video.is_file():
        raise InputError(video, "no such file")
    if options.identity_every < 1:
        raise OptionError("--identity-every", "must be at least 1")
    photo = load_image(portrait)
    speech = load_audio(audio)
    if not len(speech) or float(np.abs(speech).max()) < 1e-4:
        raise InputError(audio, "is silent: there is no speech to measure lip sync against")
    faces = Face68()
    photo_face = faces.find(photo, str(portrait))
    photo_ap = rest_aperture(faces, photo, photo_face)
    try:
        phones, phone_source = phones_for(speech, text)
    except OptionError:
        if text is not None:
            raise
        phones, phone_source = [], "unavailable (pocketsphinx is not installed)"

    # pass 1: landmarks, identity, sharpness, background
    fps, frames = _frames(video)
    photo_emb = faces.embed(photo, photo_face)
    marks, detected, ident, ident_at, sharp, band_diff, band_photo = [], [], [], [], [], [], []
    photo_sharp = None
    first_band = band = photo_band = None
    size = None
    for i, rgb in enumerate(frames):
        if i >= MAX_FRAMES:
            raise InputError(video, f"is longer than {MAX_FRAMES} frames; evaluate a shorter clip")
        if i == 0:  # seed the tracker on the first frame, then measure it as every other frame
            faces.start_tracking(faces.find(rgb, f"{video} (first frame)"))
        face = faces.track(rgb)
        marks.append(face.landmarks)
        detected.append(face.detected)
        if i % options.identity_every == 0:
            ident.append(float(np.linalg.norm(faces.embed(rgb, face) - photo_emb)))
            ident_at.append(i)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if size is None:
            size = rgb.shape[:2]
            scale = float(M.iod(face.landmarks[None])[0] / M.iod(photo_face.landmarks[None])[0])
            ref = _scaled_photo(photo, scale)
            ref_face = faces.find(ref, str(portrait))
            x0, y0, x1, y1 = M.face_box(ref_face.landmarks, ref.shape[:2])
            photo_sharp = M.laplacian_variance(cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1])
            band = M.border_band(size)
            first_band = rgb[band].astype(np.int16)
            if ref.shape[:2] == size:  # the video shows the whole photo: compare the background with it
                photo_band = ref[band].astype(np.int16)
        elif rgb.shape[:2] != size:
            raise InputError(video, "changes its frame size part way through")
        x0, y0, x1, y1 = M.face_box(face.landmarks, size)
        sharp.append(M.laplacian_variance(gray[y0:y1, x0:x1]))
        band_diff.append(float(np.abs(rgb[band].astype(np.int16) - first_band).mean()))
        if photo_band is not None and i % options.identity_every == 0:
            band_photo.append(float(np.abs(rgb[band].astype(np.int16) - photo_band).mean()))
    if not marks:
        raise InputError(video, "has no frames")
    lm = np.array(marks)
    n = len(lm)
    ap = M.aperture(lm)
    env = M.envelope(speech, SAMPLE_RATE_HZ, fps, n)
    width = M.mouth_width(lm)
    ear = M.eye_aspect(lm)
    pose = M.head_pose(lm, size[1], size[0])
    result = {
        "video": str(video), "portrait": str(portrait), "audio": str(audio), "frames": n, "fps": fps,
        "duration_s": n / fps, "audio_s": len(speech) / SAMPLE_RATE_HZ, "frame_size": [size[1], size[0]],
        "face_detected_share": float(np.mean(detected)),
        "lipsync_envelope": M.best_lag_correlation(ap, env),
        "phones_source": phone_source, "phone_count": len(phones),
    }
    if phones:
        target = M.openness_target(phones, fps, n)
        result["lipsync_phones"] = M.best_lag_correlation(ap, target)
        result.update(M.closure_rate(ap, phones, fps))
        result.update(M.open_vowel_aperture(ap, phones, fps))
        rounded = M.phone_frames(phones, fps, n, ("OW", "UW", "W"))
        spread = M.phone_frames(phones, fps, n, ("IY", "EH", "EY", "IH"))
        if rounded and spread:
            result["width_rounded_vs_spread"] = float(np.mean([width[a:b + 1].mean() for _, a, b in rounded])
                                                      / np.mean([width[a:b + 1].mean() for _, a, b in spread]))
    result.update(M.silence_ratio(ap, env, fps, M.rest_level(photo_ap, ap)))
    result["photo_aperture"] = photo_ap
    result.update({"identity_max": float(np.max(ident)), "identity_mean": float(np.mean(ident)),
                   "identity_over_030": float(np.mean(np.array(ident) > 0.30)), "identity_judged": len(ident)})
    result.update(M.pose_stats(pose))
    result.update(M.blinks(ear, fps))
    result["landmark_jitter_iod"] = M.landmark_jitter(lm)
    result["background_change_255"] = float(np.mean(band_diff))
    if band_photo:
        result["background_vs_photo_255"] = float(np.mean(band_photo))
    result["face_sharpness_vs_photo"] = float(np.median(sharp) / photo_sharp) if photo_sharp else float("nan")
    result["series"] = {"aperture": ap.round(4).tolist(), "envelope": env.round(5).tolist(),
                        "mouth_width": width.round(4).tolist(), "eye_aspect": ear.round(4).tolist(),
                        "pose_deg": pose.round(3).tolist(), "identity": [round(v, 4) for v in ident],
                        "identity_frames": ident_at, "face_sharpness": [round(v, 2) for v in sharp],
                        "photo_sharpness": photo_sharp}
    result["phones"] = [[p, round(s, 3), round(e, 3)] for p, s, e in phones]

    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = video.stem
        if options.report:
            from talkrt.runtime.evaluate.report import contact_sheet, plot_report

            picks = sheet_picks(ap, env, phones, fps)
            _, frames = _frames(video)
            wanted = {i for group in picks.values() for i in group}
            kept = {i: rgb for i, rgb in enumerate(frames) if i in wanted}
            contact_sheet(out / f"{stem}_sheet.png", photo, photo_face.landmarks, kept, lm, picks, phones, fps)
            plot_report(out / f"{stem}_report.png", result, phones)
            result["report"] = str(out / f"{stem}_report.png")
            result["sheet"] = str(out / f"{stem}_sheet.png")
        tmp = out / f".{stem}.json.part"
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(out / f"{stem}.json")
    return result


def sheet_picks(ap: np.ndarray, env: np.ndarray, phones, fps: float, per_row: int = 6) -> dict[str, list[int]]:
    """Frame indices for the contact sheet: centre frames of open vowels, of p/b/m and of silences
    (evenly spread over the clip); without phones, the loudest frames stand in for open vowels."""
    n = len(ap)

    def spread(items: list[int]) -> list[int]:
        if len(items) <= per_row:
            return items
        return [items[k] for k in np.linspace(0, len(items) - 1, per_row).round().astype(int)]

    centre = lambda spans: [(a + b) // 2 for _, a, b in spans]
    picks: dict[str, list[int]] = {}
    if phones:
        picks["open vowels"] = spread(centre(M.phone_frames(phones, fps, n, M.OPEN_VOWELS)))
        picks["p / b / m"] = spread(centre(M.phone_frames(phones, fps, n, M.BILABIALS)))
    else:
        order = np.argsort(-env)
        chosen: list[int] = []
        for i in order:
            if all(abs(int(i) - j) > fps * 0.3 for j in chosen):
                chosen.append(int(i))
            if len(chosen) == per_row:
                break
        picks["loudest"] = sorted(chosen)
    silent, _ = M.speech_activity(env, fps)
    runs, i = [], 0
    while i < n:
        if silent[i]:
            j = i
            while j < n and silent[j]:
                j += 1
            runs.append((i + j - 1) // 2)
            i = j
        else:
            i += 1
    picks["silence"] = spread(runs)
    picks["widest"] = [int(np.argmax(ap))]
    return picks


def summarize(rows: list[dict]) -> dict:
    """Means over a batch of the headline numbers (NaN-aware) and the worst identity. Counted events
    are pooled, not averaged per video: p/b/m closure over all bilabials, blinks over all minutes
    (one blink in a 1 s clip is not 60 a minute)."""
    def col(key, sub=None):
        vals = [(r.get(key) or {}).get(sub) if sub else r.get(key) for r in rows]
        vals = [v for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    def pooled(rate, count):
        pairs = [(r[rate], r[count]) for r in rows if r.get(count) and math.isfinite(r.get(rate, float("nan")))]
        return float(sum(a * n for a, n in pairs) / sum(n for _, n in pairs)) if pairs else float("nan")

    minutes = sum(r["frames"] / r["fps"] / 60 for r in rows if r.get("fps"))

    return {
        "videos": len(rows),
        "lipsync_envelope_r": col("lipsync_envelope", "r"), "lipsync_envelope_r_best": col("lipsync_envelope", "r_best"),
        "lipsync_envelope_lag": col("lipsync_envelope", "lag"),
        "lipsync_phones_r": col("lipsync_phones", "r"), "lipsync_phones_r_best": col("lipsync_phones", "r_best"),
        "pbm_closed": pooled("pbm_closed", "pbm_count"), "open_vowel_aperture": col("open_vowel_aperture"),
        "silence_ratio": col("silence_ratio"), "identity_max": max((r["identity_max"] for r in rows), default=float("nan")),
        "head_std_deg": col("head_std_deg"), "blinks_per_min": sum(r.get("blinks", 0) for r in rows) / minutes if minutes else float("nan"),
        "landmark_jitter_iod": col("landmark_jitter_iod"), "background_change_255": col("background_change_255"),
        "face_sharpness_vs_photo": col("face_sharpness_vs_photo"),
    }


HEADLINE = [("lipsync_envelope", "r", "env r"), ("lipsync_envelope", "lag", "lag"), ("lipsync_phones", "r", "phone r"),
            ("pbm_closed", None, "p/b/m shut"), ("open_vowel_aperture", None, "open vowel"),
            ("silence_ratio", None, "silence"), ("identity_max", None, "id max"), ("head_std_deg", None, "head std"),
            ("blinks_per_min", None, "blinks/min"), ("face_sharpness_vs_photo", None, "sharpness")]


def headline(row: dict) -> str:
    """One line of the headline numbers."""
    parts = []
    for key, sub, label in HEADLINE:
        v = (row.get(key) or {}).get(sub) if sub else row.get(key)
        parts.append(f"{label} {v:.3g}" if isinstance(v, (int, float)) else f"{label} -")
    return ", ".join(parts)


def batch_inputs(folder: Path, portrait: str | None, audio: str | None, text: str | None) -> list[dict]:
    """The videos of a folder with their inputs: NAME.inputs.json beside NAME.mp4 ({"portrait",
    "audio", "text"}, paths relative to the folder), else --portrait and --audio (a file, or a folder
    holding NAME.wav; NAME.txt there is the transcript)."""
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(folder, "holds no videos (.mp4, .y4m, ...)")
    jobs = []
    for v in videos:
        side = v.with_suffix(".inputs.json")
        if side.exists():
            try:
                spec = json.loads(side.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(side, "is not valid JSON") from None
            job = {k: (str((folder / spec[k]).resolve()) if k != "text" else spec[k]) for k in spec
                   if k in ("portrait", "audio", "text")}
        else:
            job = {}
        if "portrait" not in job:
            if portrait is None or Path(portrait).is_dir():
                raise OptionError("--portrait", f"needs one portrait file for {v.name} (or {side.name})")
            job["portrait"] = portrait
        if "audio" not in job:
            if audio is None:
                raise OptionError("--audio", f"needed for {v.name} (or {side.name})")
            a = Path(audio)
            if a.is_dir():
                found = [p for p in a.iterdir() if p.stem == v.stem and p.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg")]
                if not found:
                    raise InputError(a, f"has no audio named {v.stem}.wav for {v.name}")
                job["audio"] = str(found[0])
                t = a / f"{v.stem}.txt"
                if "text" not in job and t.exists():
                    job["text"] = t.read_text().strip()
            else:
                job["audio"] = audio
        if "text" not in job and text is not None:
            job["text"] = text
        jobs.append({"video": str(v), **job})
    return jobs
