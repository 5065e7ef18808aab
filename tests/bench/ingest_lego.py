"""Benchmark: upload the 100 lego training images through the Python API into a temp home.

Prints JSON lines: one per run (each in a fresh subprocess, so peak RSS is that run's), then a summary
with the median wall time of 3 runs, images/s and the checks (100 RGBA working copies, 100 thumbnails).

    .venv/bin/python tests/bench/ingest_lego.py [--runs 3] [--data /work/shared/datasets/lego/train]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path("/work/shared/datasets/lego/train")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def one_run(data: Path, home: Path) -> dict[str, object]:
    """Upload ``data`` into a new project in ``home``; time only the upload call."""
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from nerf_widgets import Studio

    project = Studio(home).create_project("lego bench")
    cpu0, t0 = _cpu_s(), time.perf_counter()
    results = project.upload_images(data)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    images = project.images()
    working = [project.image_path(i.id) for i in images]
    thumbs = [project.image_path(i.id, "thumbnail") for i in images]
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),  # all threads; wall on an idle machine is about cpu_s / workers
        "accepted": sum(r.status == "accepted" for r in results),
        "rgba_working": sum(p.suffix == ".png" and Image.open(p).mode == "RGBA" for p in working),
        "alpha_rows": sum(i.has_alpha for i in images),
        "thumbnails": sum(p.is_file() and p.read_bytes()[:3] == b"\xff\xd8\xff" for p in thumbs),
        "blurry": sum(i.blurry for i in images),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "workers": project.settings.ingest_workers or os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--child-home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_home:
        print(json.dumps(one_run(args.data, args.child_home)))
        return 0
    runs = []
    for k in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp:
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, __file__, "--data", str(args.data), "--child-home", tmp],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            run = {"bench": "ingest_lego", "run": k + 1, "load_avg_1m": round(load, 2), **json.loads(out.stdout)}
            print(json.dumps(run), flush=True)
            runs.append(run)
    wall = statistics.median(float(r["wall_s"]) for r in runs)
    n = int(runs[0]["accepted"])
    ok = all(r["accepted"] == r["rgba_working"] == r["alpha_rows"] == r["thumbnails"] == 100 for r in runs)
    cpu = statistics.median(float(r["cpu_s"]) for r in runs)
    print(json.dumps({"bench": "ingest_lego", "summary": True, "median_wall_s": wall, "images_per_s": round(n / wall, 1),
                      "median_cpu_s": cpu,
                      "peak_rss_mib": max(float(r["peak_rss_mib"]) for r in runs), "checks_ok": ok,
                      "cpu_count": os.cpu_count()}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
