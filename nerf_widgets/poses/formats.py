"""Readers for existing poses: nerfstudio / instant-ngp transforms.json, Blender split files, COLMAP sparse
models (.txt or .bin) and LLFF poses_bounds.npy. Each returns a :class:`RawScene` in the OpenGL
camera-to-world convention; names are still as written in the file (resolved to images by ``imports``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.poses.colmap_io import intrinsics_from_colmap
from nerf_widgets.poses.geometry import c2w_from_world_to_cam, rotation_problem
from nerf_widgets.poses.types import Intrinsics

__all__ = ["BLENDER_SPLITS", "RawFrame", "RawScene", "detect_format", "read_colmap", "read_llff", "read_transforms"]

BLENDER_SPLITS = ("train", "val", "test")
SizeFn = Callable[[str], "tuple[int, int] | None"]  # name in the file -> (w, h) of the image it names, if found


@dataclass
class RawFrame:
    """A frame as read: ``name`` as in the file, ``c2w`` [4,4] OpenGL, intrinsics in the file's pixel units."""

    name: str
    c2w: NDArray[np.float64]
    intrinsics: Intrinsics


@dataclass
class RawScene:
    format: str
    frames: list[RawFrame]
    points: tuple[NDArray[np.float64], NDArray[np.uint8]] | None = None
    problems: list[str] = field(default_factory=list)  # per-frame problems, reported together


def detect_format(source: Path) -> tuple[str, Path]:
    """Which reader handles ``source`` (a file or folder) -> (format, path to read)."""
    source = Path(source)
    if not source.exists():
        raise NotFoundError(f"poses file {source} does not exist")
    if source.is_dir():
        for sub in (source, source / "sparse" / "0", source / "sparse"):
            if (sub / "cameras.bin").exists() or (sub / "cameras.txt").exists():
                return "colmap", sub
        if (source / "transforms.json").exists():
            return "transforms", source / "transforms.json"
        if any((source / f"transforms_{s}.json").exists() for s in BLENDER_SPLITS):
            return "blender", source
        if (source / "poses_bounds.npy").exists():
            return "llff", source / "poses_bounds.npy"
        raise ValidationError(f"{source} holds no transforms.json, transforms_<split>.json, COLMAP model "
                              "(cameras/images/points3D .txt or .bin) or poses_bounds.npy")
    if source.suffix == ".npy":
        return "llff", source
    if source.name in ("cameras.txt", "cameras.bin", "images.txt", "images.bin", "points3D.txt", "points3D.bin"):
        return "colmap", source.parent
    if source.suffix == ".json":
        return "transforms", source
    raise ValidationError(f"{source.name}: unknown poses format (expected .json, .npy or a COLMAP model)")


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValidationError(f"{path.name}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}",
                              line=err.lineno, column=err.colno) from err
    except UnicodeDecodeError as err:
        raise ValidationError(f"{path.name}: not a UTF-8 text file") from err
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise ValidationError(f"{path.name}: expected a JSON object with a 'frames' list")
    return data


def _matrix(value: Any) -> NDArray[np.float64]:
    m = np.array(value, dtype=np.float64)
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4):
        raise ValueError(f"transform_matrix must be 4x4 (or 3x4), got shape {m.shape}")
    return m


def _intrinsics(frame: dict[str, Any], top: dict[str, Any], size: tuple[int, int] | None) -> Intrinsics:
    """Per-frame keys beat top-level keys; a focal length may come as fl_x or camera_angle_x (Blender)."""
    def get(key: str) -> Any:
        return frame.get(key, top.get(key))

    w, h = get("w"), get("h")
    if (w is None or h is None) and size is not None:
        w, h = size
    if w is None or h is None:
        raise ValueError("image size unknown: no w/h and the image was not found")
    fl_x, fl_y = get("fl_x"), get("fl_y")
    if fl_x is None and get("camera_angle_x") is not None:
        fl_x = 0.5 * float(w) / math.tan(0.5 * float(get("camera_angle_x")))
    if fl_y is None and get("camera_angle_y") is not None:
        fl_y = 0.5 * float(h) / math.tan(0.5 * float(get("camera_angle_y")))
    if fl_x is None and fl_y is None:
        raise ValueError("missing intrinsics: no fl_x / fl_y / camera_angle_x in the frame or at the top level")
    fl_x = fl_y if fl_x is None else fl_x
    fl_y = fl_x if fl_y is None else fl_y
    cx, cy = get("cx"), get("cy")
    dist = {k: float(get(k) or 0.0) for k in ("k1", "k2", "p1", "p2")}
    return Intrinsics(w=int(w), h=int(h), fl_x=float(fl_x), fl_y=float(fl_y),
                      cx=float(w) / 2 if cx is None else float(cx), cy=float(h) / 2 if cy is None else float(cy),
                      **dist)


def _frames_from_json(data: dict[str, Any], label: str, size_of: SizeFn) -> tuple[list[RawFrame], list[str]]:
    frames, problems = [], []
    for k, fr in enumerate(data["frames"]):
        name = fr.get("file_path") if isinstance(fr, dict) else None
        where = f"{label} frame {k} ({name})" if name else f"{label} frame {k}"
        try:
            if not isinstance(name, str) or not name:
                raise ValueError("no file_path")
            c2w = _matrix(fr.get("transform_matrix"))
            why = rotation_problem(c2w[:3, :3]) or (None if np.all(np.isfinite(c2w)) else "translation has NaN")
            if why:
                raise ValueError(why)
            intr = _intrinsics(fr, data, size_of(name))
            if intr.problem():
                raise ValueError(intr.problem())
            frames.append(RawFrame(name, c2w, intr))
        except (ValueError, TypeError) as err:
            problems.append(f"{where}: {err}")
    return frames, problems


def read_transforms(path: Path, size_of: SizeFn, fmt: str = "transforms") -> RawScene:
    """A nerfstudio / instant-ngp / Blender transforms file, or a folder of Blender split files (all merged)."""
    files = [path] if path.is_file() else [path / f"transforms_{s}.json" for s in BLENDER_SPLITS
                                           if (path / f"transforms_{s}.json").exists()]
    scene = RawScene(format=fmt, frames=[])
    for f in files:
        frames, problems = _frames_from_json(_load_json(f), f.name, size_of)
        scene.frames += frames
        scene.problems += problems
    return scene


def read_colmap(folder: Path) -> RawScene:
    """A COLMAP sparse model (cameras / images / points3D, .txt or .bin) read by pycolmap."""
    from nerf_widgets.poses.sfm import load_pycolmap

    pc = load_pycolmap()
    try:
        rec = pc.Reconstruction(str(folder))
    except Exception as err:  # pycolmap raises plain RuntimeError/ValueError with the parser's message
        raise ValidationError(f"{folder}: unreadable COLMAP model ({err})") from err
    scene = RawScene(format="colmap", frames=[])
    for im in sorted(rec.images.values(), key=lambda i: i.name):
        if not im.has_pose:
            continue
        cam = rec.cameras[im.camera_id]
        cfw = im.cam_from_world()
        rot = np.asarray(cfw.rotation.matrix())
        why = rotation_problem(rot) or (None if np.all(np.isfinite(cfw.translation)) else "translation has NaN")
        try:
            intr = intrinsics_from_colmap(cam.model.name, cam.width, cam.height, list(cam.params))
            why = why or intr.problem()
        except ValidationError as err:
            why = str(err)
        if why:
            scene.problems.append(f"image {im.image_id} ({im.name}): {why}")
            continue
        scene.frames.append(RawFrame(im.name, c2w_from_world_to_cam(rot, np.asarray(cfw.translation)), intr))
    pts = list(rec.points3D.values())
    scene.points = (np.array([p.xyz for p in pts], np.float64).reshape(-1, 3),
                    np.array([p.color for p in pts], np.uint8).reshape(-1, 3))
    return scene


def read_llff(path: Path, names: list[str], size_of: SizeFn) -> RawScene:
    """LLFF poses_bounds.npy: row i is the i-th image in sorted name order; [3x5 | near far] per row.

    Rotation columns are LLFF's [down, right, backwards] -> OpenGL [right, up, backwards] = [c1, -c0, c2].
    hwf is for the full-resolution photo and is rescaled to each image's actual width.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValidationError(f"{path.name}: not a readable .npy array ({err})") from err
    if arr.ndim != 2 or arr.shape[1] != 17:
        raise ValidationError(f"{path.name}: expected an array of shape (N, 17), got {arr.shape}")
    if len(arr) != len(names):
        raise ValidationError(f"{path.name} has {len(arr)} rows but there are {len(names)} images "
                              "(rows are matched to images in sorted filename order)")
    scene = RawScene(format="llff", frames=[])
    for k, (row, name) in enumerate(zip(arr.astype(np.float64), sorted(names), strict=False)):
        m = row[:15].reshape(3, 5)
        c2w = np.eye(4)
        c2w[:3, :3] = np.stack([m[:, 1], -m[:, 0], m[:, 2]], axis=1)
        c2w[:3, 3] = m[:, 3]
        h, w, f = m[:, 4]
        size = size_of(name) or (int(round(w)), int(round(h)))
        ratio = size[0] / w if w > 0 else float("nan")
        why = rotation_problem(c2w[:3, :3]) or (None if np.all(np.isfinite(row)) else "NaN in the row")
        intr = Intrinsics(w=size[0], h=size[1], fl_x=f * ratio, fl_y=f * ratio, cx=size[0] / 2, cy=size[1] / 2)
        why = why or intr.problem()
        if why:
            scene.problems.append(f"row {k} ({name}): {why}")
        else:
            scene.frames.append(RawFrame(name, c2w, intr))
    return scene
