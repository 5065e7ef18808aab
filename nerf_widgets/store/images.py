"""Image repository: ``verb_noun(*, db, ...)``. Rows are inserted only after their files exist on disk."""

from __future__ import annotations

from typing import Any

from nerf_widgets.core.errors import DuplicateImageError, NotFoundError
from nerf_widgets.store.db import Database, utc_now
from nerf_widgets.store.records import ImageRecord

_COLUMNS = (
    "id", "project_id", "original_name", "source_id", "format", "original_ext", "working_ext", "size_bytes",
    "orig_width", "orig_height", "width", "height", "has_alpha", "focal_mm", "focal_35mm", "camera_make",
    "camera_model", "sha256", "sharpness", "blurry", "frame_time", "position", "created_at",
)


def insert_image(*, db: Database, values: dict[str, Any]) -> ImageRecord:
    """Insert one image row; ``created_at`` is filled in here, ``position`` too unless given.

    Raises ``DuplicateImageError`` when the content hash is already in the project (checked under the
    write lock, so two kernels uploading the same photo cannot both store it).
    """
    with db.transaction() as conn:
        existing = find_image_by_hash(db=db, project_id=values["project_id"], sha256=values["sha256"])
        if existing is not None:
            raise DuplicateImageError(existing)
        pos = values.get("position")
        if pos is None:
            pos = next_position(db=db, project_id=values["project_id"])
        row = {**values, "position": pos, "created_at": utc_now()}
        missing = set(_COLUMNS) - set(row)
        if missing:
            raise ValueError(f"insert_image is missing {sorted(missing)}")
        conn.execute(
            f"INSERT INTO images ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            [row[c] for c in _COLUMNS],
        )
    return get_image(db=db, project_id=values["project_id"], image_id=values["id"])


def next_position(*, db: Database, project_id: str) -> int:
    """One past the largest ``position`` in the project (0 when empty)."""
    row = db.query_one("SELECT COALESCE(MAX(position), -1) + 1 AS p FROM images WHERE project_id = ?", (project_id,))
    return int(row["p"]) if row else 0


def find_image_by_hash(*, db: Database, project_id: str, sha256: str) -> str | None:
    row = db.query_one("SELECT id FROM images WHERE project_id = ? AND sha256 = ?", (project_id, sha256))
    return None if row is None else str(row["id"])


def get_image(*, db: Database, project_id: str, image_id: str) -> ImageRecord:
    row = db.query_one("SELECT * FROM images WHERE id = ? AND project_id = ?", (image_id, project_id))
    if row is None:
        raise NotFoundError(f"No image with id {image_id!r} in this project.", image_id=image_id)
    return ImageRecord.from_row(row)


def list_images(*, db: Database, project_id: str) -> list[ImageRecord]:
    """Images in upload order (a video's frames in time order)."""
    rows = db.query("SELECT * FROM images WHERE project_id = ? ORDER BY position, frame_time, created_at",
                    (project_id,))
    return [ImageRecord.from_row(r) for r in rows]


def count_images(*, db: Database, project_id: str) -> int:
    row = db.query_one("SELECT COUNT(*) AS n FROM images WHERE project_id = ?", (project_id,))
    return int(row["n"]) if row else 0


def delete_image_row(*, db: Database, project_id: str, image_id: str) -> ImageRecord:
    """Delete one row and return what it held (so the caller can remove its files)."""
    with db.transaction() as conn:
        rec = get_image(db=db, project_id=project_id, image_id=image_id)
        conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
    return rec


def count_source_users(*, db: Database, source_id: str) -> int:
    """How many frames still come from this video (its original is deleted when none do)."""
    row = db.query_one("SELECT COUNT(*) AS n FROM images WHERE source_id = ?", (source_id,))
    return int(row["n"]) if row else 0


__all__ = [
    "count_images",
    "count_source_users",
    "delete_image_row",
    "find_image_by_hash",
    "get_image",
    "insert_image",
    "list_images",
    "next_position",
]
