"""What the export lost, in pictures: the mesh and the field drawn from the same photo's camera, both scored.

After the texture is final, each comparison view (a held-out photo when the run has one) is rendered twice:
the mesh as a glTF viewer draws it (unlit texture, bilinear, 2x2 supersampled, plus its view-dependent term as
the MeshViewer adds it; the world frame, before the region's placement) and the field by the caller's renderer. Both are scored against the photo (PSNR over
the whole picture, the photo's alpha composited on the same background), and the three pictures with the
scores go into a folder beside the export (``<stem>.compare/``) that the MeshViewer shows side by side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.export.formats import MeshData, z_up_to_y_up
from nerf_widgets.export.raster import rasterize
from nerf_widgets.export.texture import sample
from nerf_widgets.export.views import PhotoView

__all__ = ["ViewComparison", "compare_views", "psnr", "read_comparison", "render_mesh", "sidecar",
           "write_comparison"]

FieldRenderer = Callable[[PhotoView], np.ndarray]  # view -> [H,W,3] float in [0,1] on the background
MAX_SIDE = 320  # comparison pictures are small: they are looked at, and the field render costs seconds each
SUPERSAMPLE = 2
INDEX = "compare.json"


@dataclass(frozen=True)
class ViewComparison:
    """One view: the photo, the field's and the mesh's render ([H,W,3] float32 in [0,1]) and their scores."""

    name: str
    photo: np.ndarray
    field: np.ndarray
    mesh: np.ndarray
    field_psnr: float
    mesh_psnr: float
    coverage: float  # share of the picture the mesh covers

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "field_psnr": round(self.field_psnr, 2), "mesh_psnr": round(self.mesh_psnr, 2),
                "coverage": round(self.coverage, 4)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0,1] (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def render_mesh(data: MeshData, view: PhotoView, background: tuple[float, float, float] = (1.0, 1.0, 1.0),
                supersample: int = SUPERSAMPLE) -> tuple[np.ndarray, float]:
    """The mesh as an unlit viewer draws it from ``view``: ([H,W,3] float32 in [0,1], share of pixels covered)."""
    parts = [p for _, p in data.parts()]
    verts, faces, first = data.joined()
    frags = rasterize(verts, faces, view, supersample)
    covered = frags.covered
    canvas = np.tile(np.asarray(background, np.float32), (*covered.shape, 1))
    for k, part in enumerate(parts):  # each part through its own texture or colours
        hit = covered & (frags.face_id >= first[k]) & (frags.face_id < first[k + 1])
        canvas[hit] = _shade(part, part.faces[frags.face_id[hit] - first[k]], frags.bary[hit][..., None], view)
    h, w = view.height, view.width
    image = canvas.reshape(h, supersample, w, supersample, 3).mean((1, 3))
    return image.clip(0, 1).astype(np.float32), float(covered.mean())


def _shade(part: MeshData, tri: np.ndarray, bary: np.ndarray, view: PhotoView) -> np.ndarray:
    """Colours [B,3] of fragments on faces (vertex ids ``tri`` [B,3], barycentrics [B,3,1]) of one part seen from
    ``view`` (its view-dependent term, when it has one, as the MeshViewer adds it)."""
    if part.image is not None and part.uv is not None:
        uv = (part.uv[tri] * bary).sum(1)
        if part.view_term is None:
            return sample(part.image, uv)
        ray = (part.verts[tri] * bary).sum(1) - np.asarray(view.c2w, np.float64)[:3, 3]
        ray /= np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-20)
        return np.clip(sample(part.image, uv) + part.view_term.shade(uv, z_up_to_y_up(ray)), 0, 1)
    if part.colors is not None:
        return ((part.colors[tri].astype(np.float32) / 255.0) * bary).sum(1)
    return np.full((len(tri), 3), 0.5, np.float32)


def compare_views(data: MeshData, views: Sequence[PhotoView], render_field: FieldRenderer, *,
                  background: tuple[float, float, float] = (1.0, 1.0, 1.0), max_side: int = MAX_SIDE,
                  progress: Callable[[float], None] | None = None) -> list[ViewComparison]:
    """Render and score the mesh and the field from each view (scaled to ``max_side``)."""
    out = []
    for k, full in enumerate(views):
        view = full.resized(max_side)
        photo = view.on_background(background)
        field = np.asarray(render_field(view), np.float32)[..., :3]
        if field.shape != photo.shape:
            raise ValueError(f"the field renderer returned {field.shape} for a {photo.shape} view")
        mesh, coverage = render_mesh(data, view, background)
        out.append(ViewComparison(view.name or f"view {k + 1}", photo, field, mesh, psnr(field, photo),
                                  psnr(mesh, photo), coverage))
        if progress is not None:
            progress((k + 1) / len(views))
    return out


def sidecar(path: str | Path) -> Path:
    """The comparison folder of an export file: ``model.glb`` -> ``model.compare/`` beside it."""
    path = Path(path)
    return path.with_name(path.stem + ".compare")


def _png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return round(float(np.mean(finite)), 2) if finite else None


def write_comparison(items: Sequence[ViewComparison], folder: Path) -> dict[str, Any]:
    """PNGs ``<k>-photo|field|mesh.png`` and ``compare.json`` (the index the viewer reads); returns the index."""
    folder.mkdir(parents=True, exist_ok=True)
    views = []
    for k, item in enumerate(items):
        files = {}
        for kind in ("photo", "field", "mesh"):
            files[kind] = f"{k}-{kind}.png"
            _png(getattr(item, kind), folder / files[kind])
        views.append({**item.summary(), **files})
    field, mesh = _mean([v.field_psnr for v in items]), _mean([v.mesh_psnr for v in items])
    index: dict[str, Any] = {"views": views, "field_psnr": field, "mesh_psnr": mesh}
    if field is not None and mesh is not None:
        index["gap_db"] = round(field - mesh, 2)
    (folder / INDEX).write_text(json.dumps(index, indent=1))
    return index


def read_comparison(folder: str | Path) -> dict[str, Any] | None:
    """The index of a comparison folder with each picture's path resolved, or None when there is none (or it
    is unreadable: a viewer shows the mesh without it)."""
    folder = Path(folder)
    try:
        index = json.loads((folder / INDEX).read_text())
        for view in index["views"]:
            for kind in ("photo", "field", "mesh"):
                path = folder / Path(view[kind]).name
                if not path.is_file():
                    return None
                view[kind] = path
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return index
