"""Decode one image safely: pixel-count check from the header, full decode, EXIF orientation, RGB(+alpha).

Pillow's own decompression-bomb guard (an error above 2 x ``Image.MAX_IMAGE_PIXELS``) stays on as a
backstop; our ``max_pixels`` limit is checked first from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nerf_widgets.ingest.results import Rejection

warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # we enforce our own limit
ORIENTATION = 0x0112
_heif_lock = threading.Lock()
_heif_ready = False


def _register_heif() -> None:
    global _heif_ready
    with _heif_lock:
        if not _heif_ready:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_ready = True


@dataclass
class Decoded:
    """``image`` is RGB or RGBA (8 bit), already turned upright; ``exif`` is the source's EXIF (maybe empty)."""

    image: Image.Image
    has_alpha: bool
    exif: Image.Exif
    pristine: bool  # pixels exactly as stored in the file (no rotation, no mode change, no draft scaling)
    full_size: tuple[int, int]  # (width, height) px of the upright image at full resolution


def pixel_limit_reason(width: int, height: int, max_pixels: int) -> str | None:
    if width * height > max_pixels:
        return (f"The image declares {width} x {height} = {width * height / 1e6:.0f} megapixels; "
                f"the limit is {max_pixels / 1e6:.0f} megapixels.")
    return None


def open_checked(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and refuse images over ``max_pixels`` before decoding."""
    if fmt == "heif":
        _register_heif()
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise Rejection(f"The image declares too many pixels ({err}); the limit is {max_pixels / 1e6:.0f} "
                        "megapixels.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise Rejection(f"The file is corrupt or not a readable {fmt.upper()} ({err}).") from None
    reason = pixel_limit_reason(img.width, img.height, max_pixels)
    if reason:
        raise Rejection(reason)
    return img


def _draft(img: Image.Image, long_side: int) -> None:
    """Let the JPEG decoder scale by 1/2, 1/4 or 1/8 while staying >= ``long_side`` (a 12 MP photo decodes ~3x
    faster and the later resize has less to do)."""
    if img.format == "JPEG" and long_side > 0 and max(img.size) > 2 * long_side:
        scale = long_side / max(img.size)
        img.draft(img.mode, (int(img.width * scale + 1), int(img.height * scale + 1)))


def decode(data: bytes, fmt: str, max_pixels: int, long_side: int = 0) -> Decoded:
    """Header check, decode (truncation shows here), orientation, then 8-bit RGB or RGBA.

    ``long_side`` > 0 allows a JPEG to be decoded at reduced scale, never below that many px.
    """
    img = open_checked(data, fmt, max_pixels)
    full = img.size
    _draft(img, long_side)
    try:
        img.load()
        exif = img.getexif()
        upright = ImageOps.exif_transpose(img) if exif.get(ORIENTATION, 1) not in (1, None) else img
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise Rejection(f"The file is truncated or corrupt ({err}).") from None
    rgb, has_alpha = to_rgb_or_rgba(upright)
    if upright is not img:
        full = full[::-1] if exif.get(ORIENTATION) in (5, 6, 7, 8) else full
    return Decoded(rgb, has_alpha, exif, pristine=rgb is img and img.size == full, full_size=(full[0], full[1]))


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit greyscale (e.g. 16-bit TIFF) to 8-bit by scaling the full range, not by clipping."""
    arr = np.asarray(img).astype(np.float32)
    if img.mode == "F":
        peak = max(float(arr.max(initial=0.0)), 1.0)
    elif img.mode.startswith("I;16") or arr.max(initial=0.0) > 255:
        peak = 65535.0
    else:
        peak = 255.0
    return Image.fromarray(np.clip(arr * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8), "L")


def to_rgb_or_rgba(img: Image.Image) -> tuple[Image.Image, bool]:
    """RGB, or RGBA when the image has a non-trivial alpha channel (kept as the foreground mask)."""
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    has_alpha_band = "A" in img.getbands() or "transparency" in img.info
    if not has_alpha_band:
        return (img if img.mode == "RGB" else img.convert("RGB")), False
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    lo, _ = rgba.getchannel("A").getextrema()
    if lo == 255:  # an alpha channel that masks nothing is dropped
        return rgba.convert("RGB"), False
    return rgba, True


__all__ = ["Decoded", "decode", "open_checked", "pixel_limit_reason", "to_rgb_or_rgba"]
