"""Benchmark: pose estimation on lego/train (poses withheld) and fern_llff vs their reference poses.

Prints one JSON line per (dataset, mapper): registered fraction, median/max rotation error (deg),
median/max camera-position error as a fraction of the scene radius (after a Umeyama Sim3 alignment),
wall time, process CPU time (the load-independent cost: on 2 idle cores wall ~ cpu/2) and peak RSS. Run: ``.venv/bin/python tests/bench/poses_lego.py [--mapper incremental global]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nerf_widgets.poses.estimate import estimate_poses
from nerf_widgets.poses.geometry import CAMERA_RADIUS, normalize_scene, rotation_error_deg, umeyama

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets"
SETS = {"lego": ("lego/train", "lego/transforms_train.json"), "fern_llff": ("fern_llff/images_8",
                                                                          "fern_llff/transforms.json")}


def load_reference(path: Path) -> dict[str, np.ndarray]:
    """File stem -> camera-to-world [4,4] from a reference transforms file."""
    frames = json.loads(path.read_text())["frames"]
    return {Path(f["file_path"]).stem: np.array(f["transform_matrix"], dtype=np.float64) for f in frames}


def compare(estimated: Path, reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Errors of the estimated cameras after the Sim3 that best maps their centres onto the reference."""
    est = {Path(f["file_path"]).stem: np.array(f["transform_matrix"])
           for f in json.loads((estimated / "transforms.json").read_text())["frames"]}
    names = sorted(set(est) & set(reference))
    a = np.stack([est[n] for n in names])
    b = np.stack([reference[n] for n in names])
    s, rot, t = umeyama(a[:, :3, 3], b[:, :3, 3])
    radius = CAMERA_RADIUS / normalize_scene(b).scale
    pos = np.linalg.norm(s * a[:, :3, 3] @ rot.T + t - b[:, :3, 3], axis=1) / radius
    ang = np.array([rotation_error_deg(rot @ ai[:3, :3], bi[:3, :3]) for ai, bi in zip(a, b, strict=False)])
    return {"registered_fraction": len(names) / len(reference), "rot_err_deg_median": float(np.median(ang)),
            "rot_err_deg_max": float(ang.max()), "pos_err_radius_median": float(np.median(pos)),
            "pos_err_radius_max": float(pos.max())}


def run(name: str, mapper: str, matcher: str, keep: Path | None = None) -> dict[str, object]:
    images_rel, ref_rel = SETS[name]
    images = sorted((DATA / images_rel).glob("*.png"))
    with tempfile.TemporaryDirectory() as tmp:
        out = keep / f"{name}_{mapper}" if keep is not None else Path(tmp) / "poses"
        t0 = time.perf_counter()
        report = estimate_poses(images, out, mapper=mapper, matcher=matcher)
        wall = time.perf_counter() - t0
        row: dict[str, object] = {"dataset": name, "mapper": report.mapper, "matcher": report.matcher,
                                  "images": len(images), "registered": report.num_registered}
        row.update(compare(out, load_reference(DATA / ref_rel)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    row.update(wall_s=round(wall, 1), cpu_s=round(usage.ru_utime + usage.ru_stime, 1), timings=report.timings, mean_reproj_px=report.mean_reprojection_error,
               points3D=report.num_points3D, mean_track_length=report.mean_track_length,
               peak_rss_mib=round(usage.ru_maxrss / 1024),
               load_avg_1min=round(float(open("/proc/loadavg").read().split()[0]), 2))
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--mapper", nargs="+", default=["incremental"], choices=["incremental", "global"])
    parser.add_argument("--matcher", default="auto")
    parser.add_argument("--keep", type=Path, default=None, help="keep the estimated poses in KEEP/<dataset>_<mapper>")
    args = parser.parse_args(argv)
    for name in args.datasets:
        for mapper in args.mapper:
            print(json.dumps(run(name, mapper, args.matcher, args.keep)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
