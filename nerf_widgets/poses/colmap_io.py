"""COLMAP camera models <-> transforms.json intrinsics, and a text-model writer (for export and round trips)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.poses.geometry import qvec_from_rotation, world_to_cam_from_c2w
from nerf_widgets.poses.types import Intrinsics, PosedFrame

__all__ = ["SUPPORTED_MODELS", "intrinsics_from_colmap", "write_colmap_text"]

# model -> parameter names, in COLMAP's order
SUPPORTED_MODELS: dict[str, tuple[str, ...]] = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
}


def intrinsics_from_colmap(model: str, width: int, height: int, params: Sequence[float]) -> Intrinsics:
    """A COLMAP camera (model name, size, params) -> :class:`Intrinsics`; fisheye models are refused."""
    names = SUPPORTED_MODELS.get(model)
    if names is None:
        raise ValidationError(f"camera model {model} is not supported (use one of {', '.join(SUPPORTED_MODELS)})")
    if len(params) != len(names):
        raise ValidationError(f"camera model {model} needs {len(names)} parameters, got {len(params)}")
    p = dict(zip(names, (float(v) for v in params), strict=False))
    fx = p.get("fx", p.get("f", 0.0))
    fy = p.get("fy", p.get("f", 0.0))
    return Intrinsics(w=int(width), h=int(height), fl_x=fx, fl_y=fy, cx=p["cx"], cy=p["cy"],
                      k1=p.get("k1", 0.0), k2=p.get("k2", 0.0), p1=p.get("p1", 0.0), p2=p.get("p2", 0.0))


def write_colmap_text(frames: Sequence[PosedFrame], folder: Path) -> None:
    """Write cameras.txt / images.txt / points3D.txt (OPENCV cameras, no points) for ``frames``.

    Image names are the frames' file names; floats are written with 17 significant digits so a
    round trip through the text model is exact to double precision.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cams: dict[Intrinsics, int] = {}
    for fr in frames:
        cams.setdefault(fr.intrinsics, len(cams) + 1)
    lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    for intr, cid in cams.items():
        vals = (intr.fl_x, intr.fl_y, intr.cx, intr.cy, intr.k1, intr.k2, intr.p1, intr.p2)
        lines.append(f"{cid} OPENCV {intr.w} {intr.h} " + " ".join(f"{v:.17g}" for v in vals))
    (folder / "cameras.txt").write_text("\n".join(lines) + "\n")
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    for k, fr in enumerate(frames, start=1):
        rot, t = world_to_cam_from_c2w(np.asarray(fr.c2w))
        q = qvec_from_rotation(rot)
        nums = " ".join(f"{v:.17g}" for v in (*q, *t))
        lines += [f"{k} {nums} {cams[fr.intrinsics]} {Path(fr.path).name}", ""]
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    (folder / "points3D.txt").write_text("# 3D point list with one line of data per point:\n")
