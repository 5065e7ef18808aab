"""Paths built from ids, checked to stay inside the studio home."""

from __future__ import annotations

import os
from pathlib import Path

from nerf_widgets.core.errors import ValidationError


def safe_join(root: Path, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse anything that resolves outside it.

    Parts are expected to be ids or fixed names; the check is a second line of defence.
    """
    root = Path(root).resolve()
    for part in parts:
        if not part or "\x00" in part or os.sep in part or part in (".", ".."):
            raise ValidationError(f"unsafe path component {part!r}")
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise ValidationError(f"path {path} escapes {root}")
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
