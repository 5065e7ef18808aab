"""Settings built by a factory from the environment; nothing is created at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Limits and defaults; every field can be overridden per studio (``Studio(home, **overrides)``)."""

    home: Path
    working_long_side: int = 1600  # px; the working copy's longest side
    thumbnail_size: int = 256  # px; thumbnail's longest side
    max_file_bytes: int = 200 * MiB  # per uploaded file (videos included)
    max_batch_bytes: int = 4096 * MiB  # per upload call
    max_pixels: int = 120_000_000  # decompression-bomb guard, checked before decoding
    min_image_side: int = 16  # px; a shorter side leaves too few pixels for features (COLMAP) or training rays
    blur_threshold: float = 60.0  # variance of the Laplacian below which a frame is flagged blurry
    ingest_workers: int = 0  # 0 = one per core
    video_fps: float = 2.0  # frames kept per second of video


def default_home() -> Path:
    return Path(os.environ.get("NERF_WIDGETS_HOME", "~/nerf-widgets")).expanduser()


def load_settings(home: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build settings: explicit ``home`` beats ``NERF_WIDGETS_HOME`` beats ``~/nerf-widgets``."""
    base = Settings(home=Path(home).expanduser() if home is not None else default_home())
    return replace(base, **overrides) if overrides else base
