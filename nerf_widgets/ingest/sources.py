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
    refused: str | None = None  # why it is rejected without being read (e.g. a link out of an added folder)

    def size(self) -> int:
        """Bytes; -1 when the path cannot be read (reported later as a rejection), 0 when refused."""
        if self.refused is not None:
            return 0
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
    """A folder's regular, non-hidden files in natural name order (not recursive).

    A symbolic link is read only when it resolves to a file inside the folder (then through its resolved
    path, so swapping the link afterwards changes nothing); a link out of the folder is reported, not followed.
    """
    root = folder.resolve()
    sources = []
    for entry in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if not entry.is_symlink():
            sources.append(Source(entry.name, path=entry))
            continue
        target = entry.resolve()
        if root in target.parents:
            sources.append(Source(entry.name, path=target))
        else:
            sources.append(Source(entry.name, refused=f"{entry.name} is a link to a file outside the folder being "
                                  "added; links out of the folder are not followed."))
    return sources


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
