"""End-to-end value of estimated poses: train ``fast`` on lego with estimated vs ground-truth poses, same budget.

Test views need poses in the estimated frame: the ground-truth test cameras are moved there with the
Sim3 (Umeyama) that best maps the estimated training cameras onto the ground-truth ones; they keep
the true intrinsics. Both datasets declare the same object box (``aabb`` +-1.5, lego's; our
normalisation puts cameras at radius 4 like Blender's) so the engine treats them alike.

Run after ``poses_lego.py --keep DIR``:
``.venv/bin/python tests/bench/poses_lego_psnr.py DIR/lego_incremental --steps 2000``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.poses.geometry import umeyama

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "lego"
AABB = [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]


def _frames(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["frames"])


def _abs(rel: str, root: Path) -> str:
    p = (root / rel).resolve()
    return str(p if p.suffix else p.with_suffix(".png"))


def _write(folder: Path, split: str, frames: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"transforms_{split}.json").write_text(json.dumps({"aabb": AABB, "frames": frames}))


def build(estimated: Path, work: Path, test_every: int) -> tuple[Path, Path]:
    """Write the ground-truth and the estimated dataset folders; return them."""
    angle = json.loads((DATA / "transforms_train.json").read_text())["camera_angle_x"]
    f_gt = 0.5 * 400 / np.tan(0.5 * angle)
    gt_intr = {"w": 400, "h": 400, "fl_x": f_gt, "fl_y": f_gt, "cx": 200.0, "cy": 200.0}
    gt_train = {Path(f["file_path"]).name: f for f in _frames(DATA / "transforms_train.json")}
    test = _frames(DATA / "transforms_test.json")[::test_every]
    est = _frames(estimated / "transforms.json")
    names = [Path(f["file_path"]).stem for f in est]
    a = np.array([f["transform_matrix"] for f in est])
    b = np.array([gt_train[n]["transform_matrix"] for n in names])
    s, rot, t = umeyama(a[:, :3, 3], b[:, :3, 3])
    gt_dir, est_dir = work / "gt", work / "est"
    _write(gt_dir, "train", [{**gt_intr, "file_path": _abs(f["file_path"], DATA),
                              "transform_matrix": f["transform_matrix"]} for f in gt_train.values()])
    _write(gt_dir, "test", [{**gt_intr, "file_path": _abs(f["file_path"], DATA),
                             "transform_matrix": f["transform_matrix"]} for f in test])
    _write(est_dir, "train", [{**f, "file_path": _abs(f["file_path"], estimated)} for f in est])
    moved = []
    for f in test:
        m = np.array(f["transform_matrix"])
        out = np.eye(4)
        out[:3, :3] = rot.T @ m[:3, :3]
        out[:3, 3] = rot.T @ (m[:3, 3] - t) / s
        moved.append({**gt_intr, "file_path": _abs(f["file_path"], DATA), "transform_matrix": out.tolist()})
    _write(est_dir, "test", moved)
    return gt_dir, est_dir


def _cli(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "nerf_widgets.cli.main", *args], check=True, capture_output=True,
                         text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("estimated", type=Path, help="folder written by poses_lego.py --keep (lego)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--test-every", type=int, default=10, help="evaluate every K-th of the 200 test views")
    args = parser.parse_args(argv)
    row: dict[str, Any] = {"steps": args.steps, "preset": args.preset, "test_views": 200 // args.test_every}
    with tempfile.TemporaryDirectory() as tmp:
        for label, data in zip(("gt", "estimated"), build(args.estimated, Path(tmp), args.test_every), strict=True):
            run = Path(tmp) / f"run_{label}"
            trained = _cli("train", str(data), "--out", str(run), "--method", "fast", "--preset", args.preset,
                           "--max-steps", str(args.steps), "--seed", "0", "--background", "white", "--quiet")
            row[f"{label}_train_s"] = trained.get("elapsed_s")
            row[f"{label}_eval"] = _cli("eval", str(run), "--data", str(data), "--split", "test", "--no-lpips")
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
