"""What a screen may ask the studio for besides a project's own calls.

The choices a panel offers (training methods and presets, export formats and options), a pose folder and
the comparison beside an export read for display. Widgets ask here rather than reach into the compute packages (``engine``, ``export``,
``poses``), so those stay free to change behind the studio API.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nerf_widgets.poses.types import PoseProgress, PoseReport

__all__ = ["ExportChoices", "PoseFolder", "PoseProgress", "PoseReport", "TrainingChoices", "export_choices",
           "read_export_comparison", "read_pose_folder", "read_view_term", "readable_mesh_file", "training_choices"]


@dataclass(frozen=True)
class TrainingChoices:
    """Training methods and presets, the default first."""

    methods: tuple[str, ...]
    presets: tuple[str, ...]


@dataclass(frozen=True)
class ExportChoices:
    """Export formats and their options (``multi_file`` formats download as a zip)."""

    formats: tuple[str, ...]
    compressions: tuple[str, ...]
    texture_formats: tuple[str, ...]
    multi_file: tuple[str, ...]
    textured: tuple[str, ...]  # formats that carry a texture (refinement against the photos applies)
    presets: dict[str, dict[str, Any]]  # size presets (web, game, archive): faces, texture, refine_minutes
    default_refine_minutes: float
    defaults: dict[str, int]  # what an export gets when a size is not given: resolution, faces, texture
    view_term: tuple[str, ...]  # formats that can carry the view-dependent colour (uncompressed)


@dataclass(frozen=True)
class PoseFolder:
    """A pose folder (``poses/`` of a project or ``nerf-widgets poses --out``) as a viewer draws it."""

    report: PoseReport
    c2w: NDArray[np.float64]  # [N,4,4] camera-to-world, OpenGL convention, world up +Z
    aspect: NDArray[np.float64]  # [N] width / height
    errors: list[float | None]  # [N] mean reprojection error in px; None when unknown (imported poses)
    points: NDArray[np.float32] | None  # [M,3] sparse points, None without points3D.ply
    colors: NDArray[np.uint8] | None  # [M,3] their RGB


def training_choices() -> TrainingChoices:
    from nerf_widgets.engine.config import METHODS, PRESETS

    return TrainingChoices(tuple(METHODS), tuple(PRESETS))


def export_choices() -> ExportChoices:
    from nerf_widgets.export.request import (
        COMPRESSIONS,
        DEFAULT_REFINE_MINUTES,
        FORMATS,
        PRESETS,
        TEXTURE_FORMATS,
        VIEW_TERM_FORMATS,
        ExportRequest,
    )

    return ExportChoices(tuple(FORMATS), tuple(COMPRESSIONS), tuple(TEXTURE_FORMATS),
                         tuple(name for name, spec in FORMATS.items() if spec.multi_file),
                         tuple(name for name, spec in FORMATS.items() if spec.textured),
                         {name: dict(values) for name, values in PRESETS.items()}, DEFAULT_REFINE_MINUTES,
                         {"resolution": ExportRequest.resolution, "faces": ExportRequest.faces,
                          "texture": ExportRequest.texture}, tuple(VIEW_TERM_FORMATS))


def read_pose_folder(folder: str | Path) -> PoseFolder | None:
    """The report, cameras and points in ``folder``; None when it holds no finished poses yet."""
    from nerf_widgets.poses.imports import load_report
    from nerf_widgets.poses.writer import read_ply

    folder = Path(folder)
    if not (folder / "report.json").is_file() or not (folder / "transforms.json").is_file():
        return None
    report = load_report(folder)
    frames = json.loads((folder / "transforms.json").read_text())["frames"]
    by_path = {str(Path(im.path).resolve()): im.reprojection_error for im in report.images if im.registered}
    c2w = np.array([f["transform_matrix"] for f in frames], dtype=np.float64).reshape(-1, 4, 4)
    aspect = np.array([f.get("w", 4) / f.get("h", 3) for f in frames], dtype=np.float64)
    errors = [by_path.get(str((folder / f["file_path"]).resolve())) for f in frames]
    points, colors = read_ply(folder / "points3D.ply") if (folder / "points3D.ply").is_file() else (None, None)
    return PoseFolder(report, c2w, aspect, errors, points, colors)


def read_export_comparison(path: str | Path) -> dict[str, Any] | None:
    """The comparison an export left beside its file (``export.compare``: PSNRs and the pictures' paths), or
    None when it has none."""
    from nerf_widgets.export.compare import read_comparison, sidecar

    return read_comparison(sidecar(path))


def read_view_term(path: str | Path) -> Any:
    """The view-dependent colour (``export.view_term.ViewTerm``) of a .glb/.gltf export, or None; ValueError when
    the file's is broken."""
    from nerf_widgets.export.gltf_read import read_view_term as read

    return read(path)


@contextmanager
def readable_mesh_file(path: str | Path) -> Iterator[Path]:
    """``path`` itself, or while the block runs a plain copy of a Draco / meshopt / quantised glTF (trimesh reads
    none of them: Draco gave all-zero vertices, meshopt an IndexError)."""
    from nerf_widgets.export.tools import decompress_gltf, gltf_compression

    path = Path(path)
    if gltf_compression(path) is None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="nw-plain-") as tmp:
        plain = Path(tmp) / f"plain{path.suffix.lower()}"
        decompress_gltf(path, plain)
        yield plain
