"""Per-image metadata: EXIF camera facts and a sharpness score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

_MAKE, _MODEL, _EXIF_IFD = 0x010F, 0x0110, 0x8769
_FOCAL, _FOCAL_35 = 0x920A, 0xA405


@dataclass(frozen=True)
class CameraInfo:
    focal_mm: float | None  # lens focal length as recorded
    focal_35mm: float | None  # 35 mm-equivalent focal length (EXIF FocalLengthIn35mmFilm)
    make: str | None
    model: str | None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value[:100] or None


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def camera_info(exif: Image.Exif) -> CameraInfo:
    """Read focal lengths and camera make/model; missing or malformed tags become ``None``."""
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except (KeyError, ValueError, TypeError, OSError):
        sub = {}
    return CameraInfo(
        focal_mm=_positive(sub.get(_FOCAL)),
        focal_35mm=_positive(sub.get(_FOCAL_35)),
        make=_text(exif.get(_MAKE)),
        model=_text(exif.get(_MODEL)),
    )


def sharpness(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grey levels (0..255), over the foreground if masked.

    Low values mean few edges: a blurry (or featureless) frame. Scores depend on resolution, so they
    are computed on the working copy, whose size is capped the same way for every image.
    """
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    if image.mode == "RGBA":
        solid = np.asarray(image.getchannel("A")) >= 128
        inner = solid[1:-1, 1:-1] & solid[:-2, 1:-1] & solid[2:, 1:-1] & solid[1:-1, :-2] & solid[1:-1, 2:]
        if inner.sum() >= 64:
            lap = lap[inner]
    return float(lap.var())


__all__ = ["CameraInfo", "camera_info", "sharpness"]
