"""Real capture benchmark: fountain_p11 photos -> estimated poses -> proposed region -> short training -> GLB of the region.

    .venv/bin/python tests/bench/region_fountain.py [--data ../shared/datasets/fountain_p11] [--minutes 10]
        [--home /tmp/region-bench] [--resolution 192] [--clock cpu]

``--clock cpu`` counts the training minutes as process CPU time / threads (a shared machine), as
``train_lego.py`` does; the training job runs on a thread of this process.

Prints one JSON line per stage (seconds, and what it made): poses (registered images, sparse points), the
proposed region (centre, size, floor tilt, share of the sparse points inside), training (steps, PSNR),
export (faces, bytes). Saves two pictures under tests/artifacts/: the sparse points with the proposed box
seen from the side and from above (region_fountain_points.png) and a render of the GLB (region_fountain_glb.png,
OpenGL through moderngl; llvmpipe without a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


def emit(**record: object) -> None:
    print(json.dumps(record), flush=True)


def _project(view: np.ndarray, axes: tuple[int, int], lo: np.ndarray, span: float, size: int) -> np.ndarray:
    return np.stack([(view[:, axes[0]] - lo[0]) / span * (size - 1),
                     (size - 1) - (view[:, axes[1]] - lo[1]) / span * (size - 1)], 1)


def points_picture(xyz: np.ndarray, rgb: np.ndarray, region, path: Path, size: int = 480) -> None:
    """Side (x-z) and top (x-y) views of the sparse points with the region box's edges in yellow."""
    from nerf_widgets.widgets.region_box import box_segments

    canvas = Image.new("RGB", (2 * size, size), (32, 33, 36))
    draw = ImageDraw.Draw(canvas)
    segs = box_segments(region).reshape(-1, 2, 3)
    lo, hi = np.percentile(xyz, 2, axis=0), np.percentile(xyz, 98, axis=0)
    lo, hi = np.minimum(lo, region.aabb()[0]), np.maximum(hi, region.aabb()[1])
    span = float(np.max(hi - lo)) * 1.1
    lo = lo - 0.05 * span
    for panel, axes in enumerate(((0, 2), (0, 1))):
        uv = _project(xyz, axes, lo[list(axes)], span, size) + [panel * size, 0]
        for (u, v), c in zip(uv, rgb, strict=True):
            draw.point((float(u), float(v)), fill=tuple(int(x) for x in c))
        for a, b in segs:
            pa = _project(a[None], axes, lo[list(axes)], span, size)[0] + [panel * size, 0]
            pb = _project(b[None], axes, lo[list(axes)], span, size)[0] + [panel * size, 0]
            draw.line([tuple(pa), tuple(pb)], fill=(255, 214, 0), width=2)
    canvas.save(path)


def glb_picture(glb: Path, path: Path, size: int = 640) -> None:
    """An oblique render of the placed GLB (floor at 0, +Y up in the file) from 45 degrees up."""
    import trimesh

    sys.path.insert(0, str(ROOT))
    from tests.bench.export_lego import render_gl
    from tests.poses.poses_synthetic import look_at

    mesh = trimesh.load(glb, force="mesh")
    verts = np.stack([mesh.vertices[:, 0], -mesh.vertices[:, 2], mesh.vertices[:, 1]], 1)
    centre = 0.5 * (verts.min(0) + verts.max(0))
    dist = 1.6 * float(np.linalg.norm(verts.max(0) - verts.min(0)))
    eye = centre + dist * np.array([0.0, -np.cos(np.radians(30)), np.sin(np.radians(30))])
    cam = SimpleNamespace(width=size, height=size, fx=size, fy=size, cx=size / 2, cy=size / 2, c2w=look_at(eye, centre))
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    rgb = render_gl(verts, np.asarray(mesh.faces), np.asarray(mesh.visual.uv), image, cam)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)


def cpu_clock() -> None:
    """Every Trainer made from now on times its budget in process CPU seconds / threads."""
    from nerf_widgets.engine import trainer

    threads = len(os.sched_getaffinity(0))
    made = trainer.Trainer.__init__

    def init(self, *args: object, **kwargs: object) -> None:
        made(self, *args, **kwargs)
        self.clock = lambda: time.process_time() / threads

    trainer.Trainer.__init__ = init  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "fountain_p11")
    ap.add_argument("--home", type=Path, default=Path("/tmp/region-bench"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--resolution", type=int, default=192)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = ap.parse_args()
    if args.clock == "cpu":
        cpu_clock()
    if not args.data.is_dir():
        args.data = Path("/work/shared/datasets/fountain_p11")
    from nerf_widgets.poses.writer import read_ply
    from nerf_widgets.studio import Studio

    shutil.rmtree(args.home, ignore_errors=True)
    studio = Studio(args.home)
    project = studio.create_project("fountain")
    t0 = time.perf_counter()
    project.upload_images(sorted(str(p) for p in (args.data / "images").iterdir()))
    emit(stage="upload", seconds=round(time.perf_counter() - t0, 1), images=len(project.images()))
    t0 = time.perf_counter()
    row = project.estimate_poses().wait(3600)
    report = project.pose_report()
    emit(stage="poses", state=row.state, seconds=round(time.perf_counter() - t0, 1), load=round(os.getloadavg()[0], 1),
         registered=report.num_registered, images=report.num_images, points=report.num_points3D)
    t0 = time.perf_counter()
    region = project.region()
    xyz, rgb = read_ply(project.path("poses", "points3D.ply"))
    inside = float(region.contains(xyz.astype(np.float64)).mean())
    tilt = (float(np.degrees(np.arccos(np.clip(region.floor[2], -1, 1)))) if region.floor is not None else None)
    emit(stage="region", seconds=round(time.perf_counter() - t0, 2), center=np.round(region.center, 3).tolist(),
         size=np.round(region.size, 3).tolist(), yaw_deg=round(region.yaw_deg, 1), floor_found=region.floor is not None,
         floor_tilt_deg=tilt, points_inside=round(inside, 3), points=len(xyz))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    points_picture(xyz.astype(np.float64), rgb, region, ARTIFACTS / "region_fountain_points.png")
    t0 = time.perf_counter()
    job = project.start_training("fast", "quick", max_minutes=args.minutes, max_steps=100_000, region=True)
    done = job.wait(3600 + 60 * args.minutes)
    metrics = job.metrics()
    last = {k: v[-1][2] for k, v in metrics.items() if v}
    emit(stage="train", state=done.state, seconds=round(time.perf_counter() - t0, 1), clock=args.clock,
         load=round(os.getloadavg()[0], 1),
         steps=metrics.get("loss", [[0]])[-1][0], **{k: round(float(v), 3) for k, v in last.items()})
    t0 = time.perf_counter()
    export = project.export("glb", region=True, keep_largest=False, resolution=args.resolution, faces=150_000,
                            texture=1024)
    ex = export.wait(3600)
    emit(stage="export", state=ex.state, seconds=round(time.perf_counter() - t0, 1), error=ex.error,
         load=round(os.getloadavg()[0], 1))
    if ex.state == "succeeded":
        import trimesh

        mesh = trimesh.load(export.path, force="mesh")
        extent = np.ptp(mesh.vertices, axis=0)
        emit(stage="glb", bytes=export.path.stat().st_size, faces=len(mesh.faces), vertices=len(mesh.vertices),
             extent_xyz_file=np.round(extent, 3).tolist(), min_y=round(float(mesh.vertices[:, 1].min()), 4))
        glb_picture(export.path, ARTIFACTS / "region_fountain_glb.png")
    studio.close()


if __name__ == "__main__":
    main()
