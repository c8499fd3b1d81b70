from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from talkrt.runtime.errors import InputError
from talkrt.runtime.image_io import MAX_SIDE_PX, load_image


def _save(tmp_path, name, im, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return path


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp")])
def test_formats_load_as_rgb8(tmp_path, portrait_rgb, fmt, ext):
    path = _save(tmp_path, f"p.{ext}", Image.fromarray(portrait_rgb), format=fmt)
    rgb = load_image(path)
    assert rgb.shape == portrait_rgb.shape and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - portrait_rgb).mean() < 8  # lossy formats allowed


def test_exif_orientation_is_applied(tmp_path, portrait_rgb):
    im = Image.fromarray(portrait_rgb[:, :400])  # 512 high, 400 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    path = _save(tmp_path, "rot.jpg", im.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())
    rgb = load_image(path)
    assert rgb.shape[:2] == (512, 400)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P"])
def test_odd_modes(tmp_path, portrait_rgb, mode):
    im = Image.fromarray(portrait_rgb)
    if mode == "I;16":
        arr = (np.asarray(im.convert("L")).astype(np.uint16) * 257)
        im = Image.fromarray(arr)
        assert im.mode == "I;16"
    else:
        im = im.convert(mode)
    path = _save(tmp_path, "m.png" if mode != "CMYK" else "m.jpg", im)
    rgb = load_image(path)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    grey = np.asarray(Image.fromarray(portrait_rgb).convert("L")).astype(int)
    assert np.abs(rgb.mean(2) - grey).mean() < 25  # same picture, not noise or black


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_not_an_image(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_text("hello, I am text")
    with pytest.raises(InputError, match="not an image"):
        load_image(path)


def test_truncated_jpeg(tmp_path, portrait_rgb):
    buf = io.BytesIO()
    Image.fromarray(portrait_rgb).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(path)


def test_too_large(tmp_path):
    path = _save(tmp_path, "big.png", Image.new("L", (MAX_SIDE_PX + 1, 70)))
    with pytest.raises(InputError, match="limit is 8000"):
        load_image(path)
