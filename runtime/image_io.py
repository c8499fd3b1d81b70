"""Portrait loading: any common format to 8-bit RGB, EXIF orientation applied, size checked."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from talkrt.runtime.errors import InputError

MAX_SIDE_PX = 8000
MIN_SIDE_PX = 64


def _to_rgb(im: Image.Image) -> Image.Image:
    """Grayscale, palette, RGBA/LA (over mid-grey), CMYK and 16/32-bit to RGB8."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        im = Image.alpha_composite(bg, rgba)
    return im.convert("RGB")


def load_image(path: str | Path) -> np.ndarray:
    """[H, W, 3] uint8 RGB, upright, or an InputError naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if not path.is_file():
        raise InputError(path, "is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if max(w, h) > MAX_SIDE_PX:
                    raise InputError(path, f"image is {w}x{h}; the limit is {MAX_SIDE_PX} px a side")
                if min(w, h) < MIN_SIDE_PX:
                    raise InputError(path, f"image is {w}x{h}; it must be at least {MIN_SIDE_PX} px a side")
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb = _to_rgb(im)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(path, "not an image (or a format talkrt cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(path, f"image is too large; the limit is {MAX_SIDE_PX} px a side") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"image is corrupt or truncated ({exc})") from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
