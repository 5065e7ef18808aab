"""Turn what ``upload_images`` accepts into a flat list of ``Source`` objects (nothing read yet)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nerf_widgets.core.errors import ValidationError


@dataclass(frozen=True)
class Source:
    """One input file: a path on the kernel's disk or bytes in memory, with the client's name."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    def size(self) -> int:
        """Bytes; -1 when the path cannot be read (reported later as a rejection)."""
        if self.data is not None:
            return len(self.data)
        try:
            return os.stat(self.path).st_size if self.path else -1
        except OSError:
            return -1

    def open(self) -> IO[bytes]:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key that puts ``r_2.png`` before ``r_10.png``."""
    return [(0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", name) if part]


def _folder_sources(folder: Path) -> list[Source]:
    """A folder's regular, non-hidden files in natural name order (not recursive)."""
    entries = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
    return [Source(p.name, path=p) for p in entries if p.is_file() and not p.name.startswith(".")]


def _one(item: Any, index: int) -> list[Source]:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return [Source(f"upload-{index + 1}", data=bytes(item))]
    if isinstance(item, (str, os.PathLike)):
        path = Path(item).expanduser()
        if path.is_dir():
            return _folder_sources(path)
        return [Source(path.name or str(item), path=path)]
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        name, payload = item
        if isinstance(payload, (bytes, bytearray, memoryview)):
            return [Source(name, data=bytes(payload))]
        if isinstance(payload, (str, os.PathLike)):
            return [Source(name, path=Path(payload))]
    raise ValidationError(
        f"Cannot upload a {type(item).__name__}: pass paths, folders, bytes or (name, bytes | path) pairs."
    )


def collect_sources(items: Any) -> list[Source]:
    """Flatten ``items`` (one item or an iterable of them) into sources, in the given order."""
    if isinstance(items, (str, os.PathLike, bytes, bytearray, memoryview, tuple)):
        items = [items]
    if not isinstance(items, Iterable):
        raise ValidationError(f"Cannot upload a {type(items).__name__}.")
    sources: list[Source] = []
    for item in items:
        sources.extend(_one(item, len(sources)))
    return sources


__all__ = ["Source", "collect_sources"]
