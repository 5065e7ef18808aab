"""What an upload returns, per stored image or rejected file (JSON-friendly for the widgets)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["accepted", "duplicate", "rejected"]


class Rejection(Exception):
    """Internal: a file is refused for ``reason`` (a sentence for a person, without the file name)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UploadResult:
    """Outcome for one stored image (a photo or one video frame) or one refused file.

    ``name`` is the client's file name as text (never a path; escape it before showing it as HTML).
    ``reason`` explains rejections and duplicates; ``duplicate_of`` is the id already holding that
    content. ``width``/``height`` are the working copy's pixels.
    """

    name: str
    status: Status
    reason: str | None = None
    image_id: str | None = None
    duplicate_of: str | None = None
    blurry: bool = False
    sharpness: float | None = None
    has_alpha: bool = False
    width: int | None = None
    height: int | None = None
    frame_time: float | None = None  # seconds into the source video
    source: int | None = None  # index of the input file in its upload call (a video's frames share it)

    @property
    def message(self) -> str:
        """One line for a person: ``name: status (reason)``."""
        return f"{self.name}: {self.status}" + (f" ({self.reason})" if self.reason else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}


__all__ = ["Rejection", "Status", "UploadResult"]
