"""Export benchmark: wall time at default settings, sizes per format, Draco ratio, mesh-render PSNR (with a run).

    .venv/bin/python tests/bench/export_lego.py                      # analytic field (no trained run needed)
    .venv/bin/python tests/bench/export_lego.py --run RUN_DIR        # a trained lego run: adds mesh-render PSNR
        [--data ../shared/datasets/lego] [--formats glb,gltf,obj,ply,points,fbx] [--out /tmp/export-bench]

Prints one JSON line per measurement. Mesh-render PSNR renders the exported GLB with pyrender (flat,
unlit, software OpenGL via OSMesa: PYOPENGL_PLATFORM=osmesa) from every 8th test view, on white, against
the ground truth, beside the NeRF's own PSNR on the same views.
"""

from __future__ import annotations

import argparse
import json
import os
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


def mesh_psnr(glb: Path, run: Path, data: Path) -> None:
    """Render the GLB from every 8th test view (pyrender, flat) and compare with ground truth on white."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    import pyrender
    import trimesh

    from nerf_widgets.engine import load_cameras
    from nerf_widgets.engine.metrics import psnr

    cams = load_cameras(data / "transforms_test.json")[::8]  # engine API: Camera list with c2w, intrinsics, image
    scene = pyrender.Scene.from_trimesh_scene(trimesh.load(glb), bg_color=[1.0, 1.0, 1.0, 1.0])
    values = []
    for cam in cams:
        y_up = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], float) @ np.asarray(cam.c2w)
        node = scene.add(pyrender.IntrinsicsCamera(cam.fx, cam.fy, cam.cx, cam.cy), pose=y_up)
        renderer = pyrender.OffscreenRenderer(cam.width, cam.height)
        rgb, _ = renderer.render(scene, flags=pyrender.RenderFlags.FLAT)
        renderer.delete()
        scene.remove_node(node)
        values.append(float(psnr(rgb / 255.0, cam.image_on_white())))
    emit(source=str(run), metric="mesh_render_psnr", value=round(float(np.mean(values)), 2), views=len(values))


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
