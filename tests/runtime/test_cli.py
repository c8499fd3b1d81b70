"""End to end through the CLI, and every kind of bad input: one line, non-zero exit, no output."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from talkrt.runtime.audio_io import load_audio
from talkrt.runtime.cli import main


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, speech_path):
    """The first 2.4 s of the example speech (keeps the suite fast)."""
    path = tmp_path_factory.mktemp("audio") / "short.wav"
    sf.write(path, load_audio(speech_path)[: int(2.4 * 16000)], 16000)
    return path


def _run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _read_mp4(path: Path):
    import av

    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return frames, v.codec_context.name, a.codec_context.name


def test_generate_full_photo(tmp_path, portrait_path, short_speech, portrait_mesh, capsys):
    out = tmp_path / "out.mp4"
    code, stdout, err = _run(["generate", portrait_path, short_speech, "-o", out, "--fps", 25], capsys)
    assert code == 0, err
    frames, vcodec, acodec = _read_mp4(out)
    assert (vcodec, acodec) == ("h264", "aac")
    assert abs(len(frames) - 60) <= 1  # 2.4 s at 25 fps
    assert frames[0].shape == (512, 512, 3)
    # the mouth region changes over time while the image corners stay put
    stack = np.stack(frames).astype(np.float32)
    mx, my = np.round(portrait_mesh.points[14, :2]).astype(int)
    assert stack[:, my - 12:my + 12, mx - 20:mx + 20].std(0).mean() > 3.0
    assert stack[:, :40, :40].std(0).mean() < 1.5
    assert not list(tmp_path.glob(".*.part"))


def test_generate_crop_and_fps(tmp_path, portrait_path, short_speech, capsys):
    out = tmp_path / "crop.mp4"
    code, _, err = _run(["generate", portrait_path, short_speech, "-o", out, "--crop", "--fps", 30, "--quiet"], capsys)
    assert code == 0, err
    frames, _, _ = _read_mp4(out)
    assert frames[0].shape == (512, 512, 3)
    assert abs(len(frames) - 72) <= 1


def test_silence_gives_idle_face(tmp_path, portrait_path, capsys):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000 * 3, np.float32), 16000)
    out = tmp_path / "idle.mp4"
    code, _, err = _run(["generate", portrait_path, silent, "-o", out, "--crop", "--seed", 3], capsys)
    assert code == 0, err
    frames, _, _ = _read_mp4(out)
    assert abs(len(frames) - 75) <= 1
    stack = np.stack(frames).astype(np.float32)
    assert stack.std(0).mean() > 0.2  # not a frozen picture: breathing, drift, blinks


def _bad(args, capsys, tmp_path, match):
    code, _, err = _run(args, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*.part"))


def test_missing_files(tmp_path, portrait_path, short_speech, capsys):
    _bad(["generate", tmp_path / "none.jpg", short_speech, "-o", tmp_path / "o.mp4"], capsys, tmp_path, "no such file")
    _bad(["generate", portrait_path, tmp_path / "none.wav", "-o", tmp_path / "o.mp4"], capsys, tmp_path, "no such file")


def test_wrong_kinds_of_file(tmp_path, portrait_path, short_speech, capsys):
    _bad(["generate", short_speech, short_speech, "-o", tmp_path / "o.mp4"], capsys, tmp_path, "not an image")
    _bad(["generate", portrait_path, portrait_path, "-o", tmp_path / "o.mp4"], capsys, tmp_path, "audio")


def test_no_face(tmp_path, short_speech, capsys):
    rng = np.random.default_rng(1)
    noise = tmp_path / "noise.png"
    Image.fromarray((rng.random((300, 300, 3)) * 255).astype(np.uint8)).save(noise)
    _bad(["generate", noise, short_speech, "-o", tmp_path / "o.mp4"], capsys, tmp_path, "no face found")


def test_face_index_out_of_range(tmp_path, portrait_path, short_speech, capsys):
    _bad(["generate", portrait_path, short_speech, "-o", tmp_path / "o.mp4", "--face-index", 3],
         capsys, tmp_path, "only 1 face")


def test_face_too_small(tmp_path, portrait_rgb, short_speech, capsys):
    small = Image.fromarray(portrait_rgb).resize((160, 160))
    canvas = Image.new("RGB", (1200, 1200), (200, 200, 200))
    canvas.paste(small, (500, 500))
    path = tmp_path / "tiny.png"
    canvas.save(path)
    code, _, err = _run(["generate", path, short_speech, "-o", tmp_path / "o.mp4"], capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "too small" in err or "no face" in err
    assert not list(tmp_path.glob("*.mp4"))


def test_empty_and_nan_audio(tmp_path, portrait_path, capsys):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    _bad(["generate", portrait_path, empty, "-o", tmp_path / "o.mp4"], capsys, tmp_path, "empty")
    nan = tmp_path / "nan.wav"
    data = np.zeros(16000, np.float32)
    data[100] = np.inf
    sf.write(nan, data, 16000, subtype="FLOAT")
    _bad(["generate", portrait_path, nan, "-o", tmp_path / "o.mp4"], capsys, tmp_path, "NaN or infinite")


def test_unwritable_output(tmp_path, portrait_path, short_speech, capsys):
    _bad(["generate", portrait_path, short_speech, "-o", tmp_path / "no" / "dir" / "o.mp4"], capsys, tmp_path,
         "does not exist")
    _bad(["generate", portrait_path, short_speech, "-o", tmp_path / "o.avi"], capsys, tmp_path, ".mp4")


def test_contradictory_and_bad_options(tmp_path, portrait_path, short_speech, capsys):
    base = ["generate", portrait_path, short_speech, "-o", tmp_path / "o.mp4"]
    _bad(base + ["--crop", "--max-size", 800], capsys, tmp_path, "contradicts")
    _bad(base + ["--fps", 0], capsys, tmp_path, "--fps")
    _bad(base + ["--emotion", "bored"], capsys, tmp_path, "unknown emotion")
    _bad(base + ["--gaze", "2,0"], capsys, tmp_path, "--gaze")
    _bad(base + ["--profile", "nosuch"], capsys, tmp_path, "unknown profile")
    _bad(base + ["--motion", "magic"], capsys, tmp_path, "unknown motion")
    _bad(base + ["--fps", "fast"], capsys, tmp_path, "invalid float")


def test_gpu_profile_without_a_gpu(tmp_path, portrait_path, short_speech, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    base = ["generate", portrait_path, short_speech, "-o", tmp_path / "o.mp4"]
    _bad(base + ["--profile", "h100"], capsys, tmp_path, "no CUDA device")


def test_console_script_entry_point(tmp_path):
    """The installed `talkrt` command answers --help (packaging is wired)."""
    res = subprocess.run([sys.executable, "-m", "talkrt.runtime.cli", "generate", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--face-index" in res.stdout


def test_several_faces_largest_first(tmp_path, portrait_rgb, analyzer):
    """Two people: the larger is animated by default, --face-index 1 picks the other."""
    canvas = np.full((600, 1100, 3), 210, np.uint8)
    canvas[40:552, 0:512] = portrait_rgb
    small = np.asarray(Image.fromarray(portrait_rgb).resize((360, 360)))
    canvas[120:480, 700:1060] = small
    faces = analyzer.detect(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].box[0] < 512 < faces[1].box[0]
    mesh1 = analyzer.analyze(canvas, face_index=1)
    assert mesh1.points[:, 0].min() > 700


def test_max_size_caps_the_output(tmp_path, portrait_path, short_speech, capsys):
    out = tmp_path / "small.mp4"
    code, _, err = _run(["generate", portrait_path, short_speech, "-o", out, "--max-size", 300, "--quiet"], capsys)
    assert code == 0, err
    frames, _, _ = _read_mp4(out)
    assert max(frames[0].shape[:2]) <= 300 and frames[0].shape[0] % 2 == 0 and frames[0].shape[1] % 2 == 0


def test_full_photo_outside_the_head_is_untouched(portrait_rgb, portrait_mesh):
    """Single resampling in photo space: away from the head, frames equal the photo exactly."""
    from talkrt.runtime.builtin.renderer import BuiltinRenderer
    from talkrt.runtime.motion import FIELD, MOTION_FIELDS

    r = BuiltinRenderer(portrait_rgb, portrait_mesh.points)
    m = np.zeros(len(MOTION_FIELDS), np.float32)
    m[[FIELD["head_yaw"], FIELD["head_pitch"], FIELD["jaw_open"]]] = [6, 4, 0.8]
    frame = r.render(m)
    assert np.array_equal(frame[:, 480:], portrait_rgb[:, 480:])  # the right edge of the picture
    assert np.array_equal(frame[490:], portrait_rgb[490:])
    assert np.abs(frame.astype(int) - portrait_rgb).max() > 30  # while the face did move


def test_stream_file_is_byte_identical_to_generate_y4m(tmp_path, portrait_path, short_speech, capsys):
    gen = tmp_path / "gen.y4m"
    code, _, err = _run(["generate", portrait_path, short_speech, "-o", gen, "--crop", "--quiet"], capsys)
    assert code == 0, err
    for chunk in (10, 700):
        out = tmp_path / f"s{chunk}.y4m"
        code, _, err = _run(["stream", portrait_path, "--audio", short_speech, "--chunk-ms", chunk, "--crop",
                             "-o", out, "--quiet"], capsys)
        assert code == 0, err
        assert out.read_bytes() == gen.read_bytes()
    from talkrt.runtime.video_io import read_y4m

    info, frames = read_y4m(gen.read_bytes())
    assert len(frames) == 60 and info["F"] == "25:1"  # exactly round(2.4 s * 25)


def test_stream_live_pipe_header_first_then_idle_then_speech(tmp_path, portrait_path, short_speech):
    """`--audio -`: the header comes before any audio, frames flow while stdin is silent (idle), and
    end of input ends the stream."""
    import threading
    import time

    from talkrt.runtime.video_io import read_y4m

    proc = subprocess.Popen([sys.executable, "-m", "talkrt.runtime.cli", "stream", str(portrait_path), "--audio", "-",
                             "--crop", "--rate", "8000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    out = bytearray()
    reader = threading.Thread(target=lambda: out.extend(proc.stdout.read()), daemon=True)
    first = proc.stdout.readline()
    assert first.startswith(b"YUV4MPEG2 W512 H512 F25:1")  # ready before any audio was written
    out.extend(first)
    reader.start()
    time.sleep(1.5)  # nothing arrives: the face idles and the clock runs
    import soxr

    pcm = (soxr.resample(load_audio(short_speech), 16000, 8000) * 32767).astype("<i2").tobytes()
    for a in range(0, len(pcm), 333):  # odd-sized writes: samples split across reads
        proc.stdin.write(pcm[a:a + 333])
    proc.stdin.close()
    reader.join(timeout=120)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    _, frames = read_y4m(bytes(out))
    assert len(frames) >= 60 + 25  # 2.4 s of speech after more than a second of idle frames
    assert b"idle" in proc.stderr.read()


def test_stream_options_are_checked(tmp_path, portrait_path, short_speech, capsys):
    base = ["stream", portrait_path, "--audio"]
    assert _run(base + [short_speech, "--chunk-ms", 0], capsys)[0] == 2
    assert _run(base + ["-", "--rate", 100], capsys)[0] == 2
    code, _, err = _run(base + ["-", "-o", tmp_path / "x.mp4"], capsys)
    assert code == 2 and "live audio" in err
    code, _, err = _run(base + [tmp_path / "missing.wav"], capsys)
    assert code == 2 and "no such file" in err and err.count("\n") == 1


def test_prepared_avatar_file_drives_generate(tmp_path, portrait_path, short_speech, capsys):
    avatar = tmp_path / "a.npz"
    code, _, err = _run(["prepare", portrait_path, "-o", avatar, "--crop"], capsys)
    assert code == 0, err
    a, b = tmp_path / "a.y4m", tmp_path / "b.y4m"
    assert _run(["generate", avatar, short_speech, "-o", a, "--quiet"], capsys)[0] == 0
    assert _run(["generate", portrait_path, short_speech, "-o", b, "--crop", "--quiet"], capsys)[0] == 0
    assert a.read_bytes() == b.read_bytes()
