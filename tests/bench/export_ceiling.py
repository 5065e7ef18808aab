"""Where an exported mesh's PSNR goes: its texture against the best colour any texture could give on its geometry.

    .venv/bin/python tests/bench/export_ceiling.py --run /work/runs/lego30/marks/30min \
        --data /work/shared/datasets/lego --glb /tmp/export-bench/glb-refine1/model.glb

The GLB (an export of the run, e.g. from tests/bench/export_lego.py) is drawn from every 8th test view with the
CPU rasteriser at 2x2 samples per pixel, each visible surface point coloured four ways:

- ``texture``: the file's texture (what a viewer shows);
- ``ray``: the field's own colour along the true view ray, volume-rendered within ``--reach`` voxels of the
  mesh: the best any colour on this geometry could do, view dependence and the field's depth included;
- ``ray_fixed_dir``: the same, with the colour asked for one direction (the inward normal): the best a
  view-independent texture could do;
- ``point``: the field's colour at the mesh point itself, along the true view direction.

One JSON line per variant: PSNR (mean over views) and the squared error split by pixel class (``edge``: within
a pixel of the photo's or the mesh's silhouette; ``inside``: covered and object; ``other``). The gaps between
the variants say what limits the mesh: texture -> ray_fixed_dir is what a plain texture leaves on the table,
ray_fixed_dir -> ray is view dependence, ray -> the field is geometry (silhouettes, occlusion).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

SAMPLES = 2  # per pixel side
TAPS = 16  # field samples along a ray within the reach


def emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def load_glb(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(verts [V,3] world Z-up, faces [F,3], uv [V,2], texture [H,W,3] float32) of a single-part GLB."""
    import trimesh

    mesh: Any = trimesh.load(path, force="mesh")
    v = np.asarray(mesh.vertices, np.float64)
    verts = np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1)  # glTF Y-up -> the world's Z-up
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"), np.float32) / 255.0
    return verts, np.asarray(mesh.faces, np.int64), np.asarray(mesh.visual.uv, np.float64), image


def along_rays(query, points: np.ndarray, dirs: np.ndarray, colour_dirs: np.ndarray, reach: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The field's colour volume-rendered along ``dirs`` through ``points`` within +-``reach`` (the remaining
    transmittance goes to the last tap), colours asked for ``colour_dirs``; reach 0 gives the colour at the point."""
    if reach == 0:
        return query.color(points.astype(np.float32), colour_dirs.astype(np.float32))
    t = np.linspace(-reach, reach, TAPS, dtype=np.float32)
    taps = (points[:, None, :] + dirs[:, None, :] * t[None, :, None]).reshape(-1, 3).astype(np.float32)
    sigma = query.density(taps).reshape(len(points), TAPS)
    alpha = 1.0 - np.exp(-sigma * float(t[1] - t[0]))
    trans = np.cumprod(np.concatenate([np.ones((len(points), 1), np.float32), 1.0 - alpha[:, :-1]], 1), 1)
    weight = alpha * trans
    weight[:, -1] += np.clip(1.0 - weight.sum(1), 0.0, 1.0)
    rgb = query.color(taps, np.repeat(colour_dirs, TAPS, 0).astype(np.float32)).reshape(len(points), TAPS, 3)
    return (weight[..., None] * rgb).sum(1) / np.maximum(weight.sum(1, keepdims=True), 1e-8)


def classes(photo_alpha: np.ndarray, covered: np.ndarray) -> dict[str, np.ndarray]:
    from scipy.ndimage import binary_dilation

    obj = photo_alpha > 0.5
    edge = binary_dilation(obj ^ binary_dilation(obj)) | binary_dilation(covered ^ binary_dilation(covered))
    inside = covered & obj & ~edge
    return {"edge": edge, "inside": inside, "other": ~edge & ~inside}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--glb", type=Path, required=True)
    parser.add_argument("--every", type=int, default=8)
    parser.add_argument("--reach", type=float, default=6.0, help="voxels of the export's 512 grid either side")
    args = parser.parse_args()

    import torch

    from nerf_widgets.engine import load_dataset, load_field
    from nerf_widgets.export import mesh as mesh_ops
    from nerf_widgets.export.query import FieldQuery
    from nerf_widgets.export.raster import rasterize
    from nerf_widgets.export.texture import corners, lookup
    from nerf_widgets.jobs.export_photos import photo_views

    torch.set_num_threads(2)
    field = load_field(args.run)
    query = FieldQuery(field.density, field.color)
    data = load_dataset(args.data)
    views = photo_views(data, "test")[:: args.every]
    verts, faces, uv, image = load_glb(args.glb)
    normals = mesh_ops.vertex_normals(verts, faces)
    reach = args.reach * float(np.max(np.ptp(verts, 0))) / 512
    table = image.reshape(-1, 3)
    names = ("texture", "ray", "ray_fixed_dir", "point")
    psnr: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, dict[str, float]] = {n: {} for n in names}
    for view in views:
        frags = rasterize(verts, faces, view, SAMPLES)
        cov = frags.covered
        tri, bary = faces[frags.face_id[cov]], frags.bary[cov][..., None]
        points = (verts[tri] * bary).sum(1)
        n = (normals[tri] * bary).sum(1)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
        dirs = points - np.asarray(view.c2w, np.float64)[:3, 3]
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        idx, w = corners((uv[tri] * bary).sum(1).astype(np.float32), image.shape[0], image.shape[1])
        colours = {"texture": lookup(table, idx, w),
                   "ray": along_rays(query, points, dirs, dirs, reach),
                   "ray_fixed_dir": along_rays(query, points, dirs, -n, reach),
                   "point": along_rays(query, points, dirs, dirs, 0.0)}
        photo = view.on_background()
        h, w_ = cov.shape
        covered = np.asarray(cov.reshape(h // SAMPLES, SAMPLES, w_ // SAMPLES, SAMPLES).any((1, 3)))
        split = classes(view.image[..., 3] / 255.0 if view.image.shape[2] == 4 else np.ones(photo.shape[:2]), covered)
        for name, colour in colours.items():
            canvas = np.ones((h, w_, 3), np.float32)
            canvas[cov] = np.clip(colour, 0, 1)
            drawn = canvas.reshape(h // SAMPLES, SAMPLES, w_ // SAMPLES, SAMPLES, 3).mean((1, 3))
            err = ((drawn - photo) ** 2).sum(-1)
            psnr[name].append(-10 * math.log10(float(err.mean() / 3)))
            for cls, mask in split.items():
                errors[name][cls] = errors[name].get(cls, 0.0) + float(err[mask].sum())
    for name in names:
        total = sum(errors[name].values())
        emit(variant=name, psnr=round(float(np.mean(psnr[name])), 2), views=len(views),
             error_share={k: round(v / total, 3) for k, v in errors[name].items()},
             squared_error={k: round(v, 1) for k, v in errors[name].items()}, glb=str(args.glb), run=str(args.run))


if __name__ == "__main__":
    main()
