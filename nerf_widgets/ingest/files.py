"""Writing outputs without half-written files: temp names in the target folder, renamed when all are done."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import IO

from PIL import Image

JPEG_QUALITY = 95
THUMB_QUALITY = 85
PNG_COMPRESS = 1  # zlib level: ~3x faster than the default 6 for ~15 % more bytes
THUMB_BACKGROUND = (255, 255, 255)


class Staged:
    """Files written under ``.<name>.part-<random>``; ``publish()`` renames them, ``discard()`` removes all."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._published: list[Path] = []

    def temp_for(self, final: Path) -> Path:
        tmp = final.with_name(f".{final.name}.part-{secrets.token_hex(4)}")
        self._pending.append((tmp, final))
        return tmp

    def publish(self) -> None:
        for tmp, final in self._pending:
            os.replace(tmp, final)
            self._published.append(final)
        self._pending = []

    def discard(self) -> None:
        """Best effort: every file is tried even if one cannot be removed (the error being cleaned up may be why)."""
        for path in [tmp for tmp, _ in self._pending] + self._published:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        self._pending, self._published = [], []


def remove_stale_parts(folder: Path) -> int:
    """Delete temp files a crashed upload left in ``folder``; call only while holding the project lock."""
    count = 0
    for path in folder.glob(".*.part-*"):
        path.unlink(missing_ok=True)
        count += 1
    return count


def resized(img: Image.Image, long_side: int) -> Image.Image:
    """A copy whose longest side is at most ``long_side`` px (Lanczos; never upscales)."""
    if max(img.size) <= long_side:
        return img
    scale = long_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def save_working(img: Image.Image, path: Path) -> None:
    """RGBA -> PNG (keeps the mask), RGB -> JPEG q95."""
    if img.mode == "RGBA":
        img.save(path, format="PNG", compress_level=PNG_COMPRESS)
    else:
        img.save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


def save_thumbnail(working: Image.Image, path: Path, size: int) -> None:
    """JPEG, long side <= ``size``; transparent areas shown on white (flattened first: RGB resizes ~2x faster)."""
    if working.mode == "RGBA":
        flat = Image.new("RGB", working.size, THUMB_BACKGROUND)
        flat.paste(working, mask=working.getchannel("A"))
        working = flat
    resized(working, size).save(path, format="JPEG", quality=THUMB_QUALITY)


def copy_stream(src: IO[bytes], dst: Path) -> None:
    with open(dst, "wb") as out:
        shutil.copyfileobj(src, out, length=1024 * 1024)


__all__ = ["Staged", "copy_stream", "remove_stale_parts", "resized", "save_thumbnail", "save_working"]
