"""Plain record types the store reads (projects, images, history); JSON-friendly via ``to_dict()``.

They live with the store that builds them from rows (widgets send them as traitlets), so the store imports
nothing above it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

R = TypeVar("R")


def _from_row(cls: type[R], row: sqlite3.Row, bools: tuple[str, ...] = ()) -> R:
    """Build ``cls`` from the columns it declares; SQLite's 0/1 integers in ``bools`` become ``bool``."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: row[k] for k in row.keys() if k in names}
    values.update({k: bool(values[k]) for k in bools if k in values})
    return cls(**values)


@dataclass(frozen=True)
class ProjectRecord:
    id: str
    name: str
    description: str
    state: str
    created_at: float  # Unix seconds, UTC
    updated_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ProjectRecord:
        return _from_row(cls, row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImageRecord:
    """One working image. ``width``/``height`` are the working copy's (px); ``orig_*`` the upload's."""

    id: str
    project_id: str
    original_name: str  # client file name: metadata only, never a path (escape before showing it)
    source_id: str | None  # video id for frames extracted from a video, else None
    format: str  # detected from content: jpeg, png, webp, tiff, heif, or the video container
    original_ext: str
    working_ext: str  # "png" when has_alpha, else "jpg"
    size_bytes: int
    orig_width: int
    orig_height: int
    width: int
    height: int
    has_alpha: bool
    focal_mm: float | None
    focal_35mm: float | None
    camera_make: str | None
    camera_model: str | None
    sha256: str
    sharpness: float  # variance of the Laplacian of the working copy's grey levels (0..255 scale)
    blurry: bool
    frame_time: float | None  # seconds into the source video
    position: int  # upload order within the project
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ImageRecord:
        return _from_row(cls, row, bools=("has_alpha", "blurry"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def working_file(self) -> str:
        return f"{self.id}.{self.working_ext}"

    @property
    def original_file(self) -> str:
        return f"{self.source_id or self.id}.{self.original_ext}"


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded lifecycle transition."""

    from_state: str | None
    to_state: str
    transition: str
    reason: str
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> HistoryEntry:
        return _from_row(cls, row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["HistoryEntry", "ImageRecord", "ProjectRecord"]
