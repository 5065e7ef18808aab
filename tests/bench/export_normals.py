"""Normal-map benchmark: how much of the full mesh's lit detail a decimated export keeps, with and without its map.

    .venv/bin/python tests/bench/export_normals.py --run /work/runs/lego30/marks/30min \
        --data /work/shared/datasets/lego [--faces 10000 50000 200000] [--texture 1024 2048 2048]

The field is meshed once at the export's grid (the full marching-cubes mesh, before decimation), then
decimated to each face count, unwrapped, and its normal map baked (``export.normal_map``). Each mesh is drawn
from every 8th test view (the CPU rasteriser, one sample per pixel) and compared with the full mesh on the
pixels both cover: the angle between the shading normals (``flat_deg`` with the low mesh's own vertex normals,
``mapped_deg`` with the normal map; median over those pixels of all views) and the PSNR of the lit pictures
(grey Lambert: a headlight and a light from above; median over views). Pixels only one mesh covers are left
out: decimation moves silhouettes, which no normal map mends, and a mapped bump seen a pixel off costs more
squared error than no bump, though it is what a person sees. One JSON line per face count, with the seconds
the bake took.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def lit(n: np.ndarray, view_dir: np.ndarray) -> np.ndarray:
    """Grey Lambert shading of unit normals [M,3]: a headlight (from the camera) and a light from above (+z)."""
    head = np.clip(-(n * view_dir).sum(1), 0, 1)
    top = np.clip(n[:, 2], 0, 1)
    return 0.15 + 0.55 * head + 0.3 * top


def shade(verts: np.ndarray, faces: np.ndarray, normals: np.ndarray, view, normal_map=None, uv=None, tan=None):  # type: ignore[no-untyped-def]
    """(shading normals [H,W,3], lit grey picture [H,W], covered [H,W]) of a mesh from a view."""
    from nerf_widgets.export import normal_map as nm
    from nerf_widgets.export.raster import rasterize

    frags = rasterize(verts, faces, view)
    cov = frags.covered
    fid, bary = frags.face_id[cov], frags.bary[cov]
    if normal_map is None:
        tri = faces[fid]
        n = (normals[tri] * bary[..., None]).sum(1)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
        p = (verts[tri] * bary[..., None]).sum(1)
    else:
        p, t, b, n0 = nm.frames(verts, faces, normals, tan, fid, bary)
        n = nm.decode(normal_map, (uv[faces[fid]] * bary[..., None]).sum(1), t, b, n0)
    d = p - np.asarray(view.c2w)[:3, 3]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    normal, grey = np.zeros((*cov.shape, 3)), np.zeros(cov.shape)
    normal[cov], grey[cov] = n, lit(n, d)
    return normal, grey, cov


def scores(low: list, reference: list) -> tuple[float, float]:  # type: ignore[type-arg]
    """(median angle in degrees over the pixels both cover, median lit PSNR over views on those pixels)."""
    angles, db = [], []
    for (n, grey, cov), (rn, rgrey, rcov) in zip(low, reference, strict=True):
        both = cov & rcov
        angles.append(np.degrees(np.arccos(np.clip((n[both] * rn[both]).sum(1), -1, 1))))
        db.append(psnr(grey[both], rgrey[both]))
    return float(np.median(np.concatenate(angles))), float(np.median(db))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else -10 * math.log10(mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a trained run")
    ap.add_argument("--data", type=Path, required=True, help="its dataset, for the test views")
    ap.add_argument("--faces", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--texture", type=int, nargs="+", default=[1024, 2048, 2048])
    ap.add_argument("--every", type=int, default=8)
    args = ap.parse_args()

    from nerf_widgets.engine import load_dataset, load_field
    from nerf_widgets.export import mesh, pipeline, uv
    from nerf_widgets.export.normal_map import bake_normal_map, oriented_points
    from nerf_widgets.export.query import FieldQuery
    from nerf_widgets.export.request import make_request
    from nerf_widgets.jobs.export_photos import photo_views

    field = load_field(args.run)
    views = photo_views(load_dataset(args.data), "test")[:: args.every]
    req = make_request("glb", "/tmp/export-normals/model.glb", field.aabb)
    st = pipeline._Stages(None, None)
    t0 = time.perf_counter()
    verts, faces, _, _ = pipeline._surface(req, FieldQuery(field.density, field.color), st)
    faces = mesh.orient_outward(verts, faces)
    verts, faces = mesh.keep_large_components(verts, faces, req.min_component)
    verts = mesh.taubin_smooth(verts, faces, req.smooth)  # as the export's cleanup does (0 = off by default)
    high_n = mesh.vertex_normals(verts, faces)
    emit(stage="full mesh", faces=len(faces), seconds=round(time.perf_counter() - t0, 1))
    reference = [shade(verts, faces, high_n, v) for v in views]
    full = oriented_points(verts, faces)
    for target, size in zip(args.faces, args.texture, strict=False):
        lv, lf = mesh.decimate(verts, faces, target)
        layout = uv.unwrap(lv, lf, size, "auto")
        v, f = lv[layout.vmap], layout.faces
        n = mesh.vertex_normals(lv, lf)[layout.vmap]
        t0 = time.perf_counter()
        image, tan = bake_normal_map(v, f, layout.uv, n, size, *full)
        seconds = time.perf_counter() - t0
        flat_deg, flat_db = scores([shade(v, f, n, view) for view in views], reference)
        mapped_deg, mapped_db = scores([shade(v, f, n, view, image, layout.uv, tan) for view in views], reference)
        emit(faces=len(f), texture=size, flat_deg=round(flat_deg, 2), mapped_deg=round(mapped_deg, 2),
             flat_db=round(flat_db, 2), mapped_db=round(mapped_db, 2), bake_seconds=round(seconds, 1), views=len(views))


if __name__ == "__main__":
    main()
