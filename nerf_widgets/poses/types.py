"""Records shared by estimation, imports and the writers: intrinsics, posed frames, progress and the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CameraPrior",
    "ImageOutcome",
    "Intrinsics",
    "PosedFrame",
    "PoseProgress",
    "PoseReport",
    "ProgressFn",
    "StopFn",
]


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole + OpenCV distortion in pixels of a ``w`` x ``h`` image (what transforms.json carries)."""

    w: int
    h: int
    fl_x: float
    fl_y: float
    cx: float
    cy: float
    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def problem(self) -> str | None:
        """Why these intrinsics are unusable, or None."""
        values = [self.fl_x, self.fl_y, self.cx, self.cy, self.k1, self.k2, self.p1, self.p2]
        if not all(np.isfinite(values)):
            return "intrinsics contain NaN or infinite values"
        if self.fl_x <= 0 or self.fl_y <= 0:
            return f"focal length must be positive (fl_x={self.fl_x:g}, fl_y={self.fl_y:g})"
        if self.w <= 0 or self.h <= 0:
            return f"image size must be positive (w={self.w}, h={self.h})"
        return None


@dataclass(frozen=True)
class CameraPrior:
    """What is known about the camera of an image (EXIF): photos sharing all of it share intrinsics."""

    make: str | None = None
    model: str | None = None
    focal_35mm: float | None = None  # 35 mm-equivalent focal length; f_px = focal_35mm / 36 * long side


@dataclass
class PosedFrame:
    """One image with its camera: ``c2w`` [4,4] OpenGL camera-to-world, ``camera_id`` groups shared intrinsics."""

    path: Path
    c2w: NDArray[np.float64]
    intrinsics: Intrinsics
    camera_id: int = 1


@dataclass(frozen=True)
class PoseProgress:
    """A progress event: ``stage`` in check/extract/match/map/normalize/write (or read/validate for imports).

    ``fraction`` is within the stage, ``overall`` across the whole call (both 0..1).
    """

    stage: str
    fraction: float
    overall: float
    message: str = ""


ProgressFn = Callable[[PoseProgress], None]
StopFn = Callable[[], bool]


@dataclass
class ImageOutcome:
    """What happened to one input image; ``reason`` says why it has no pose."""

    name: str
    path: str
    registered: bool
    reason: str | None = None
    reprojection_error: float | None = None  # px, mean over the image's observations
    num_observations: int = 0


@dataclass
class PoseReport:
    """Summary of an estimation or import, written as report.json and returned to callers."""

    source: str  # "colmap" or "import:<format>"
    out_dir: str
    images: list[ImageOutcome]
    matcher: str | None = None
    matcher_reason: str | None = None
    mapper: str | None = None
    mapper_reason: str | None = None
    num_models: int = 0
    num_points3D: int = 0
    mean_reprojection_error: float | None = None  # px
    mean_track_length: float | None = None
    cameras: list[dict[str, Any]] = field(default_factory=list)
    normalization: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        return len(self.images)

    @property
    def num_registered(self) -> int:
        return sum(1 for im in self.images if im.registered)

    @property
    def registered_fraction(self) -> float:
        return self.num_registered / max(1, self.num_images)

    @property
    def unregistered(self) -> list[ImageOutcome]:
        return [im for im in self.images if not im.registered]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(num_images=self.num_images, num_registered=self.num_registered)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseReport:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data["images"] = [ImageOutcome(**im) for im in data.get("images", [])]
        return cls(**data)
