"""Export benchmark: wall time at default settings, sizes per format, Draco ratio, mesh-render PSNR (with a run).

    .venv/bin/python tests/bench/export_lego.py                      # analytic field (no trained run needed)
    .venv/bin/python tests/bench/export_lego.py --run RUN_DIR        # a trained lego run: adds mesh-render PSNR
        [--data ../shared/datasets/lego] [--formats glb,gltf,obj,ply,points,fbx] [--out /tmp/export-bench]

Prints one JSON line per measurement. Mesh-render PSNR renders the exported GLB (unlit texture, z-buffer
rasteriser in numpy below: no OpenGL needed) from every 8th test view, on white, against the ground truth,
beside the NeRF's own PSNR on the same views.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SUFFIX = {"glb": ".glb", "gltf": ".gltf", "obj": ".obj", "ply": ".ply", "points": ".ply", "fbx": ".fbx"}


def emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def load(run: Path | None):
    if run is None:
        from nerf_widgets.export import SphereBoxField

        return SphereBoxField(floater=False), "analytic"
    from nerf_widgets.engine import load_field

    return load_field(run), str(run)


def export_all(field, source: str, out: Path, formats: list[str]) -> Path:
    from nerf_widgets.export import export_field

    glb = out / "glb" / "model.glb"
    runs = [("glb", "none", glb)] + [(f, "none", out / f / f"model{SUFFIX[f]}") for f in formats if f != "glb"]
    runs += [("glb", c, out / f"glb-{c}" / "model.glb") for c in ("draco", "meshopt")]
    sizes: dict[str, int] = {}
    for fmt, compress, path in runs:
        t0 = time.perf_counter()
        res = export_field(field.density, field.color, field.aabb, path, format=fmt, compress=compress)
        total = sum(res.sizes.values())
        sizes[f"{fmt}-{compress}"] = total
        emit(source=source, format=fmt, compress=compress, seconds=round(time.perf_counter() - t0, 2),
             stages=res.seconds, bytes=total, files=res.sizes, vertices=res.vertices, faces=res.faces,
             iso=round(res.iso, 3), uv=res.uv_method, texture=res.texture)
    for c in ("draco", "meshopt"):
        emit(source=source, metric=f"glb_{c}_ratio", value=round(sizes["glb-none"] / sizes[f"glb-{c}"], 2))
    return glb


def rasterize(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, image: np.ndarray, cam, chunk: int = 40_000):
    """Textured, unlit z-buffer render [H,W,3] on white of a world-frame (Z-up) mesh seen by an OpenGL camera.

    Perspective-correct UVs, nearest texel; numpy only, so it runs anywhere (no OpenGL context needed).
    """
    c2w = np.asarray(cam.c2w, np.float64)[:3]
    p = (verts - c2w[:, 3]) @ c2w[:, :3]  # camera frame, looking down -Z
    z = -p[:, 2]
    sx, sy = cam.fx * p[:, 0] / z + cam.cx, -cam.fy * p[:, 1] / z + cam.cy
    h, w = cam.height, cam.width
    depth = np.full(h * w, np.inf)
    out_uv = np.zeros((h * w, 2))
    tri_ok = np.all(z[faces] > 1e-3, axis=1)
    for start in range(0, len(faces), chunk):
        f = faces[start : start + chunk][tri_ok[start : start + chunk]]
        x, y, iz = sx[f], sy[f], 1.0 / z[f]  # [T,3]
        x0 = np.clip(np.ceil(x.min(1) - 0.5), 0, w).astype(int)
        x1 = np.clip(np.floor(x.max(1) - 0.5), -1, w - 1).astype(int)
        y0 = np.clip(np.ceil(y.min(1) - 0.5), 0, h).astype(int)
        y1 = np.clip(np.floor(y.max(1) - 0.5), -1, h - 1).astype(int)
        nx, ny = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
        t = np.repeat(np.arange(len(f)), nx * ny)
        local = np.arange(len(t)) - np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
        px, py = x0[t] + local % nx[t] + 0.5, y0[t] + local // nx[t] + 0.5
        ax, ay, bx, by, cx_, cy_ = x[t, 0], y[t, 0], x[t, 1], y[t, 1], x[t, 2], y[t, 2]
        den = (by - cy_) * (ax - cx_) + (cx_ - bx) * (ay - cy_)
        den = np.where(np.abs(den) < 1e-12, 1e-12, den)
        b0 = ((by - cy_) * (px - cx_) + (cx_ - bx) * (py - cy_)) / den
        b1 = ((cy_ - ay) * (px - cx_) + (ax - cx_) * (py - cy_)) / den
        bary = np.stack([b0, b1, 1 - b0 - b1], 1)
        inside = np.all(bary >= 0, axis=1)
        t, bary, pix = t[inside], bary[inside], (py[inside].astype(int) * w + px[inside].astype(int))
        persp = bary * iz[t]
        zz = 1.0 / persp.sum(1)
        tuv = (uv[f[t]] * (persp * zz[:, None])[..., None]).sum(1)
        order = np.argsort(-zz)  # far first: the nearest write wins
        pix, zz, tuv = pix[order], zz[order], tuv[order]
        closer = zz < depth[pix]
        depth[pix[closer]], out_uv[pix[closer]] = zz[closer], tuv[closer]
    hit = np.isfinite(depth)
    th, tw = image.shape[:2]
    col = np.clip((out_uv[:, 0] * tw).astype(int), 0, tw - 1)
    row = np.clip(((1 - out_uv[:, 1]) * th).astype(int), 0, th - 1)
    rgb = np.ones((h * w, 3))
    rgb[hit] = image[row[hit], col[hit], :3] / 255.0
    return rgb.reshape(h, w, 3)


def mesh_psnr(glb: Path, run: Path, data_dir: Path, every: int = 8) -> None:
    """Mesh render vs NeRF render of every ``every``-th test view, both against the ground truth on white."""
    import trimesh

    from nerf_widgets.engine import load_dataset, load_field
    from nerf_widgets.engine.metrics import psnr
    from nerf_widgets.engine.sampler import ground_truth

    mesh = trimesh.load(glb, force="mesh")
    verts = np.stack([mesh.vertices[:, 0], -mesh.vertices[:, 2], mesh.vertices[:, 1]], 1)  # GLB Y-up -> world Z-up
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    data, field = load_dataset(data_dir), load_field(run)
    mesh_values, nerf_values = [], []
    for i in data.splits["test"][::every]:
        cam = data.cameras[i]
        gt = ground_truth(data, i, cam)
        mesh_values.append(float(psnr(rasterize(verts, np.asarray(mesh.faces), np.asarray(mesh.visual.uv), image, cam)
                                      .astype(np.float32), gt)))
        nerf_values.append(float(psnr(field.render(cam), gt)))
    emit(source=str(run), metric="mesh_render_psnr", value=round(float(np.mean(mesh_values)), 2),
         nerf_psnr=round(float(np.mean(nerf_values)), 2), views=len(mesh_values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/datasets/lego")
    parser.add_argument("--formats", default="glb,gltf,obj,ply,points,fbx")
    parser.add_argument("--out", type=Path, default=Path("/tmp/export-bench"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    field, source = load(args.run)
    glb = export_all(field, source, args.out, args.formats.split(","))
    if args.run is not None:
        mesh_psnr(glb, args.run, args.data)


if __name__ == "__main__":
    main()
