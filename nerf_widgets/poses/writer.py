"""Writers for transforms.json (nerfstudio format), points3D.ply and report.json, committed all-or-nothing.

Everything is written into a staging folder next to ``out_dir`` (same filesystem) and only then
renamed into place, transforms.json last, so a reader never sees a half-written result and a failed
run leaves the previous result untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nerf_widgets.poses.geometry import Normalization
from nerf_widgets.poses.types import PosedFrame, PoseReport

__all__ = ["OUTPUT_FILES", "build_transforms", "staging_dir", "write_outputs", "write_ply"]

OUTPUT_FILES = ("points3D.ply", "report.json", "transforms.json")  # commit order: transforms.json last


def _file_path(image: Path, out_dir: Path) -> str:
    """Image path as stored in transforms.json: relative to ``out_dir`` (absolute if on another drive)."""
    try:
        return Path(os.path.relpath(Path(image).resolve(), Path(out_dir).resolve())).as_posix()
    except ValueError:
        return str(Path(image).resolve())


def build_transforms(frames: Sequence[PosedFrame], out_dir: Path, norm: Normalization | None,
                     has_points: bool) -> dict[str, Any]:
    """The transforms.json payload: per-frame intrinsics always, also top-level when all frames share them."""
    frames_json = []
    for fr in frames:
        entry: dict[str, Any] = {"file_path": _file_path(fr.path, out_dir),
                                 "transform_matrix": np.asarray(fr.c2w, dtype=np.float64).tolist(),
                                 "camera_id": int(fr.camera_id)}
        entry.update(fr.intrinsics.to_dict())
        frames_json.append(entry)
    data: dict[str, Any] = {"camera_model": "OPENCV"}
    shared = {fr.intrinsics for fr in frames}
    if len(shared) == 1:
        intr = next(iter(shared))
        data.update(intr.to_dict())
        data["camera_angle_x"] = 2.0 * math.atan(0.5 * intr.w / intr.fl_x)
        data["camera_angle_y"] = 2.0 * math.atan(0.5 * intr.h / intr.fl_y)
    if has_points:
        data["ply_file_path"] = "points3D.ply"
    if norm is not None:
        data["normalization"] = norm.to_dict()
    data["frames"] = frames_json
    return data


def write_ply(path: Path, xyz: NDArray[np.float64], rgb: NDArray[np.uint8] | None = None) -> None:
    """Binary little-endian PLY with float32 x y z and uint8 red green blue; xyz [M,3], rgb [M,3]."""
    n = len(xyz)
    rgb = np.full((n, 3), 200, np.uint8) if rgb is None else np.asarray(rgb, dtype=np.uint8)
    rec = np.zeros(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rec["x"], rec["y"], rec["z"] = np.asarray(xyz, dtype=np.float32).T if n else ([], [], [])
    rec["r"], rec["g"], rec["b"] = rgb.T if n else ([], [], [])
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(rec.tobytes())


def read_ply(path: Path) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Read a PLY written by :func:`write_ply` -> (xyz [M,3] float32, rgb [M,3] uint8)."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    n = int(next(ln.split()[2] for ln in raw[:end].decode().splitlines() if ln.startswith("element vertex")))
    rec = np.frombuffer(raw[end:], dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"),
                                          ("b", "u1")], count=n)
    return np.stack([rec["x"], rec["y"], rec["z"]], 1), np.stack([rec["r"], rec["g"], rec["b"]], 1)


@contextmanager
def staging_dir(out_dir: Path) -> Iterator[Path]:
    """A scratch folder beside ``out_dir`` (so the final renames stay on one filesystem), removed on exit."""
    parent = Path(out_dir).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{Path(out_dir).name}.staging-", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_outputs(stage: Path, out_dir: Path, frames: Sequence[PosedFrame], norm: Normalization | None,
                  report: PoseReport, points: tuple[NDArray[np.float64], NDArray[np.uint8]] | None) -> None:
    """Write the three files into ``stage``, then rename them into ``out_dir`` (transforms.json last).

    A points3D.ply left from an earlier run is removed when this run has no points, so the folder is
    always self-consistent.
    """
    out_dir = Path(out_dir)
    has_points = points is not None and len(points[0]) > 0
    if has_points and points is not None:
        write_ply(stage / "points3D.ply", points[0], points[1])
    report.files = {"transforms": str(out_dir / "transforms.json"), "report": str(out_dir / "report.json")}
    if has_points:
        report.files["points"] = str(out_dir / "points3D.ply")
    (stage / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=_json_default))
    transforms = build_transforms(frames, out_dir, norm, has_points)
    (stage / "transforms.json").write_text(json.dumps(transforms, indent=2))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        src = stage / name
        if src.exists():
            os.replace(src, out_dir / name)
        elif (out_dir / name).exists():
            (out_dir / name).unlink()


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
