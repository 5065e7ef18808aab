"""Sample files made by the tests: real encoders, tiny sizes."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def textured(w: int, h: int, seed: int = 0) -> Image.Image:
    """Random blocks: sharp edges everywhere, so the Laplacian variance is high."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(1, h // 4), max(1, w // 4), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.NEAREST)


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def jpeg_with_orientation_6() -> bytes:
    """64x32 landscape pixels, left half red and right half blue, EXIF orientation 6 (rotate 90 CW to view)."""
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:, :32] = (255, 0, 0)
    arr[:, 32:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110] = 6, "TestCam", "Model X"
    sub = exif.get_ifd(0x8769)
    sub[0x920A], sub[0xA405] = 4.2, 26
    return encode(Image.fromarray(arr), "JPEG", exif=exif, quality=95)


def png_rgba(w: int = 48, h: int = 40) -> bytes:
    """Textured RGB, transparent border (alpha 0) around an opaque centre."""
    rgba = textured(w, h, seed=3).convert("RGBA")
    alpha = np.zeros((h, w), np.uint8)
    alpha[8:-8, 8:-8] = 255
    rgba.putalpha(Image.fromarray(alpha))
    return encode(rgba, "PNG")


def tiff16(w: int = 40, h: int = 30) -> bytes:
    """16-bit greyscale gradient 0..65535."""
    ramp = np.tile(np.linspace(0, 65535, w).astype(np.uint16), (h, 1))
    return encode(Image.fromarray(ramp), "TIFF")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels with a tiny IDAT (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def video_mp4(path: Path, seconds: float = 2.0, fps: int = 10, size: tuple[int, int] = (64, 48),
              container: str = "mp4", codec: str = "mpeg4") -> Path:
    """A video; in each second the middle frame is sharp and the others are heavily blurred."""
    import av
    from PIL import ImageFilter

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.bit_rate = 2_000_000
        for i in range(int(seconds * fps)):
            img = textured(*size, seed=i)
            if i % fps != fps // 2:
                img = img.filter(ImageFilter.GaussianBlur(4))
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(textured(80, 60, seed=1), "JPEG", quality=90)
