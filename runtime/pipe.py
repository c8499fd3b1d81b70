"""`talkrt stream`: the streaming session driven from a shell pipe.

`--audio -` is live: raw s16le mono PCM read from stdin as it arrives (end of input = end of
speech), the frame clock runs from the moment the y4m header is out, and the face idles while no
audio comes. `--audio FILE` pushes the decoded file in `--chunk-ms` chunks as fast as the pipeline
takes them; its frames are byte-identical to `talkrt generate ... -o out.y4m`.
"""
from __future__ import annotations

import os
import sys
import threading

from talkrt.runtime.audio_io import load_audio
from talkrt.runtime.session import open_sink, stream_file
from talkrt.runtime.stream import Stream

READ_BYTES = 3200  # 100 ms of 16 kHz s16le at most per read; a read returns what has arrived


def _feed_stdin(stream: Stream, rate: int, fd: int) -> None:
    """Push stdin's PCM as it arrives; EOF ends the speech. Errors stay in the stream."""
    carry = b""
    try:
        while True:
            data = os.read(fd, READ_BYTES)
            if not data:
                break
            data = carry + data
            cut = len(data) - len(data) % 2
            carry = data[cut:]
            if cut:
                stream.push(data[:cut], rate)
        stream.end_of_speech()
    except Exception:  # a closed stream or a bad chunk: the reader side reports it
        pass


def run_stream(args, options, open_avatar) -> dict:
    live = args.audio == "-"
    samples = None if live else load_audio(args.audio)  # a bad file fails before any output
    avatar = open_avatar(args.portrait, options)
    settings = avatar.settings
    width, height = avatar.frame_size
    crf = args.crf if args.crf is not None else settings.crf
    stream = None
    try:
        with open_sink(args.output, width, height, avatar.fps, samples, crf, settings.preset) as sink:
            stream = Stream(avatar, options.resolved_controls(), live=live, policy=None if live else "wait")
            if live:
                feeder = threading.Thread(target=_feed_stdin, args=(stream, args.rate, sys.stdin.fileno()),
                                          name="talkrt-stdin", daemon=True)
                feeder.start()
                frames = iter(stream)
            else:
                frames = stream_file(stream, samples, args.chunk_ms)
            for frame in frames:
                sink.write(frame.image)
    except BrokenPipeError:  # the reader went away: stop quietly, as pipes do
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
    finally:
        if stream is not None:
            stream.close()
    stats = stream.stats if stream is not None else None
    return {"frames": stats.frames if stats else 0, "idle_frames": stats.idle_frames if stats else 0,
            "dropped": stats.dropped if stats else 0}
