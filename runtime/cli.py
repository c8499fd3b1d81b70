"""`talkrt` command line. Errors are one line on stderr and a non-zero exit code."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_INPUT = 2
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other input error
        self.exit(EXIT_INPUT, f"talkrt: error: {message} (see --help)\n")


def _gaze(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gaze expects X,Y (e.g. 0.2,-0.1), got {text!r}") from None
    return x, y


def _progress_bar(stream):
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        if done != total and done % 5:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        rate = done / max(time.perf_counter() - start, 1e-9)
        stream.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} frames {rate:5.1f} fps")
        if done == total:
            stream.write("\n")
        stream.flush()
    return show


def _add_render_options(g: argparse.ArgumentParser) -> None:
    """Options shared by generate and stream (defaults from the profile where it has one)."""
    g.add_argument("--model", default="builtin", help="model family: builtin (default) or liveportrait")
    g.add_argument("--weights", help="liveportrait: folder of the downloaded public weights")
    g.add_argument("--profile", default="cpu", help="profile name or .toml path (default: cpu)")
    g.add_argument("--fps", type=float, help="frames per second (default from the profile: 25)")
    g.add_argument("--max-size", type=int, help="longer side of the full-photo output in px (default 1280)")
    g.add_argument("--crop", action="store_true", help="output the 512x512 aligned face instead of the whole photo")
    g.add_argument("--face-index", type=int, default=0, help="which face, by size, 0 = largest (default 0)")
    g.add_argument("--motion", help="builtin motion model (default from the profile: diffusion)")
    g.add_argument("--seed", type=int, default=0, help="seed for blinks, gaze and head motion (default 0)")
    g.add_argument("--emotion", default="neutral", help="neutral, happy, sad, surprised or angry")
    g.add_argument("--head-motion", type=float, default=1.0, help="head movement intensity, 0-3 (default 1)")
    g.add_argument("--gaze", type=_gaze, help="fixed gaze X,Y in [-1, 1] (default: natural)")
    g.add_argument("--cfg-audio", type=float, default=0.5, help="guidance weight of the audio condition (default 0.5)")
    g.add_argument("--cfg-gaze", type=float, default=1.0, help="guidance weight of the gaze condition (default 1.0)")
    g.add_argument("--steps", type=int, help="diffusion sampling steps, 1-50 (default from the profile: 8)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="talkrt", description="Talking-face video from one portrait photo and speech audio.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser("generate", help="render a talking-face video (MP4 or y4m)")
    g.add_argument("portrait", help="portrait image (JPEG, PNG, WebP, BMP) or a prepared avatar (.npz)")
    g.add_argument("audio", help="speech audio (WAV, FLAC, OGG, MP3; any rate and channel count)")
    g.add_argument("-o", "--output", required=True, help="output .mp4 (H.264 + AAC) or .y4m (lossless)")
    g.add_argument("--crf", type=int, help="H.264 quality, 0-51, lower is better (default from the profile: 17)")
    _add_render_options(g)
    s = sub.add_parser("stream", help="the streaming session from a shell pipe: PCM in, y4m frames out")
    s.add_argument("portrait", help="portrait image or a prepared avatar (.npz)")
    s.add_argument("--audio", required=True, help="speech file, or - for raw s16le mono PCM on stdin (live)")
    s.add_argument("--rate", type=int, default=16000, help="sample rate of --audio - in Hz (default 16000)")
    s.add_argument("--chunk-ms", type=float, default=100.0, help="chunk size a file is pushed in (default 100)")
    s.add_argument("-o", "--output", default="-", help="- (y4m on stdout, default), .y4m or .mp4 file")
    s.add_argument("--crf", type=int, help="H.264 quality when writing .mp4")
    _add_render_options(s)
    a = sub.add_parser("prepare", help="prepare a portrait once into an avatar file (.npz)")
    a.add_argument("portrait", help="portrait image (JPEG, PNG, WebP, BMP)")
    a.add_argument("-o", "--output", required=True, help="avatar file to write (.npz)")
    for flag in ("--model", "--weights", "--profile", "--fps", "--max-size", "--face-index", "--motion"):
        a._add_action(next(x for x in s._actions if flag in x.option_strings))
    a.add_argument("--crop", action="store_true", help="frames are the 512x512 aligned face")
    v = sub.add_parser("serve", help="the live avatar in a web page over WebRTC (needs talkrt[serve])")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    v.add_argument("--profile", default="cpu", help="profile name or .toml path (default: cpu)")
    v.add_argument("--token", help="require this bearer token (Authorization header or ?token=)")
    v.add_argument("--max-sessions", type=int, help="sessions at once, below the profile's measured capacity")
    v.add_argument("--max-session-s", type=float, default=600.0, help="longest session in seconds (default 600)")
    e = sub.add_parser("eval", help="measure a talking-face video against its photo and speech (needs talkrt[eval])")
    e.add_argument("video", help="the video, or a folder of videos (batch: NAME.inputs.json or --portrait/--audio)")
    e.add_argument("--portrait", help="the photo the video was made from")
    e.add_argument("--audio", help="the speech (a file; in batch form also a folder of NAME.wav [+ NAME.txt])")
    e.add_argument("--text", help="transcript of the speech (default: what pocketsphinx recognizes)")
    e.add_argument("-o", "--output", help="folder for NAME.json and the report (default: VIDEO's folder/eval)")
    e.add_argument("--identity-every", type=int, default=5, help="judge identity on every n-th frame (default 5)")
    e.add_argument("--no-report", action="store_true", help="JSON only: no plots or contact sheet")
    w = sub.add_parser("weights", help="manage downloaded weights")
    wsub = w.add_subparsers(dest="action", required=True, parser_class=_Parser)
    f = wsub.add_parser("fetch", help="download public checkpoints (needs network and huggingface_hub)")
    f.add_argument("which", choices=["liveportrait", "joyvasa"])
    f.add_argument("--dir", default="weights", help="weights folder (default ./weights)")
    return p


def _options(args):
    """(SessionOptions, MotionControls-or-None) from the shared options."""
    from talkrt.runtime.errors import OptionError
    from talkrt.runtime.motion import MotionControls
    from talkrt.runtime.session import SessionOptions

    if args.crop and args.max_size is not None:
        raise OptionError("--crop", "contradicts --max-size (a crop is always 512x512)")
    options = SessionOptions(profile=args.profile, model=args.model, crop=args.crop, max_size=args.max_size,
                             face_index=args.face_index, fps=args.fps, motion=args.motion,
                             weights=Path(args.weights) if args.weights else None)
    if not hasattr(args, "seed"):
        return options
    steps = args.steps if args.steps is not None else options.settings.steps
    controls = MotionControls(seed=args.seed, emotion=args.emotion, head_motion=args.head_motion, gaze=args.gaze,
                              cfg_audio=args.cfg_audio, cfg_gaze=args.cfg_gaze, steps=steps)
    from dataclasses import replace

    return replace(options, controls=controls)


def _avatar(path: str, options):
    """A prepared avatar (.npz) or a portrait prepared now."""
    from talkrt.runtime.avatar import Avatar

    if path.lower().endswith(".npz"):
        return Avatar.load(path, options.profile)
    return Avatar.prepare(path, options.avatar_options, options.settings)


def _check_crf(args) -> None:
    from talkrt.runtime.errors import OptionError

    if args.crf is not None and not 0 <= args.crf <= 51:
        raise OptionError("--crf", f"must be between 0 and 51, got {args.crf}")


def _run_generate(args) -> int:
    from talkrt.runtime.errors import OptionError
    from talkrt.runtime.session import generate
    from talkrt.runtime.video_io import check_output_path

    _check_crf(args)
    for opt, path in (("portrait", args.portrait), ("audio", args.audio)):
        if os.path.abspath(path) == os.path.abspath(args.output):
            raise OptionError("--output", f"would overwrite the {opt} input")
    if args.output == "-":
        raise OptionError("--output", "generate writes a file; use talkrt stream for stdout")
    options = _options(args)
    check_output_path(args.output)
    show = _progress_bar(sys.stderr) if (sys.stderr.isatty() and not args.quiet) else None
    summary = generate(args.portrait, args.audio, args.output, options, progress=show, crf=args.crf,
                       avatar=_avatar(args.portrait, options) if args.portrait.lower().endswith(".npz") else None)
    if not args.quiet:
        print(f"wrote {args.output}: {summary['frames']} frames {summary['width']}x{summary['height']}, "
              f"{summary['audio_s']:.2f} s, rendered at {summary['fps']:.1f} fps")
    return 0


def _run_stream(args) -> int:
    from talkrt.runtime.errors import OptionError
    from talkrt.runtime.pipe import run_stream

    _check_crf(args)
    if not 1 <= args.chunk_ms <= 60000:
        raise OptionError("--chunk-ms", f"must be between 1 and 60000, got {args.chunk_ms}")
    if not 4000 <= args.rate <= 384000:
        raise OptionError("--rate", f"must be between 4000 and 384000 Hz, got {args.rate}")
    if args.output.lower().endswith(".mp4") and args.audio == "-":
        raise OptionError("--output", "live audio (--audio -) streams y4m (- or .y4m); MP4 needs the whole audio")
    options = _options(args)
    summary = run_stream(args, options, _avatar)
    if not args.quiet:
        print(f"talkrt stream: {summary['frames']} frames, {summary['idle_frames']} idle, "
              f"{summary['dropped']} dropped", file=sys.stderr)
    return 0


def _run_serve(args) -> int:
    from talkrt.runtime.errors import OptionError

    try:
        import aiohttp  # noqa: F401
        import aiortc  # noqa: F401

        from talkrt.runtime.server import ServeOptions, serve
    except ImportError as exc:
        raise OptionError("serve", f"needs the serve extra: pip install 'talkrt[serve]' ({exc.name} is missing)") from None
    serve(ServeOptions(host=args.host, port=args.port, profile=args.profile, token=args.token,
                       max_sessions=args.max_sessions, max_session_s=args.max_session_s))
    return 0


def _run_prepare(args) -> int:
    from talkrt.runtime.avatar import Avatar
    from talkrt.runtime.errors import InputError

    if not args.output.endswith(".npz"):
        raise InputError(args.output, "an avatar file must end in .npz")
    options = _options(args)
    avatar = Avatar.prepare(args.portrait, options.avatar_options, options.settings)
    avatar.save(args.output)
    print(f"wrote {args.output}: {avatar.options.family} avatar, frames {avatar.frame_size[0]}x{avatar.frame_size[1]}")
    return 0


def _run_eval(args) -> int:
    import json

    from talkrt.runtime.errors import InputError, OptionError
    from talkrt.runtime.evaluate.run import EvalOptions, batch_inputs, evaluate, headline, summarize

    video = Path(args.video)
    if not video.exists():
        raise InputError(video, "no such file or folder")
    out = Path(args.output) if args.output else (video if video.is_dir() else video.parent) / "eval"
    options = EvalOptions(identity_every=args.identity_every, report=not args.no_report)
    if video.is_dir():
        jobs = batch_inputs(video, args.portrait, args.audio, args.text)
    else:
        if not args.portrait or not args.audio:
            raise OptionError("--portrait/--audio", "both are needed to evaluate a video")
        jobs = [{"video": str(video), "portrait": args.portrait, "audio": args.audio, "text": args.text}]
    rows = []
    for job in jobs:
        row = evaluate(job["video"], job["portrait"], job["audio"], job.get("text"), out, options)
        rows.append(row)
        print(f"{Path(job['video']).name}: {headline(row)}")
    if len(rows) > 1:
        summary = {"summary": summarize(rows), "videos": [{k: v for k, v in r.items() if k not in ("series", "phones")}
                                                           for r in rows]}
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        m = summary["summary"]
        print(f"mean of {len(rows)}: " + ", ".join(f"{k} {v:.3g}" for k, v in m.items() if k != "videos"))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from talkrt.runtime.errors import TalkrtError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors (code 2) and --help (code 0)
        return int(exc.code or 0)
    try:
        if args.command == "generate":
            return _run_generate(args)
        if args.command == "stream":
            return _run_stream(args)
        if args.command == "prepare":
            return _run_prepare(args)
        if args.command == "serve":
            return _run_serve(args)
        if args.command == "eval":
            return _run_eval(args)
        if args.command == "weights":
            from talkrt.runtime.liveportrait.weights import fetch

            for path in fetch(args.which, Path(args.dir)):
                print(f"fetched into {path}")
            return 0
    except TalkrtError as exc:
        print("talkrt: error: " + " ".join(str(exc).split()), file=sys.stderr)  # always one line
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("talkrt: interrupted; no output written", file=sys.stderr)
        return 130
    except MemoryError:
        print("talkrt: error: out of memory", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("TALKRT_DEBUG"):
            raise
        print(f"talkrt: internal error: {exc.__class__.__name__}: {' '.join(str(exc).split())} "
              "(set TALKRT_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
