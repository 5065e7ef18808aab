"""Does training with a region model the object better? The room scene of the region tests (a small object off
the cameras' focus inside a patterned room, 24 views of 64 px), trained the same number of steps without and
with the object's box as the region; PSNR over the object's pixels of the held-out views.

    .venv/bin/python tests/bench/region_training.py [--steps 300] [--size 64] [--threads 2]

Prints one JSON line per run (steps, seconds, object PSNR, whole-image PSNR) and one with the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def psnr_of(run: Path, scene: Path) -> tuple[float, float]:
    """(object-pixel PSNR, whole-image PSNR) over the test views."""
    from nerf_widgets.engine import load_field
    from nerf_widgets.engine.data import load_dataset
    from tests.engine.region_scene import trace

    field, data = load_field(run), load_dataset(scene)
    obj, whole = [], []
    for i in data.split("test"):
        cam = data.cameras[i]
        gt, mask = trace(np.asarray(cam.c2w), cam.width, cam.fx)
        err = (field.render(cam) - gt) ** 2
        obj.append(err[mask].mean())
        whole.append(err.mean())
    return float(-10 * np.log10(np.mean(obj))), float(-10 * np.log10(np.mean(whole)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from nerf_widgets.core.region import Region
    from nerf_widgets.engine import make_config, train
    from tests.engine.region_scene import OBJECT_BOX, make_room_scene

    tmp = Path(tempfile.mkdtemp(prefix="bench_region_"))
    scene = make_room_scene(tmp / "room", size=args.size)
    model = {"res_schedule": [[0, 64], [100, 96], [200, 128]], "unbounded_res_schedule": [[0, 64], [100, 96], [200, 128]]}
    got = {}
    for name, region in (("whole", None), ("region", Region.from_dict(OBJECT_BOX).to_dict())):
        cfg = make_config("fast", "quick", max_steps=args.steps, max_minutes=0, batch_rays=2048, eval_every=0,
                          checkpoint_every=args.steps, threads=args.threads, model=model, region=region)
        t0, cpu0 = time.perf_counter(), time.process_time()
        train(scene, tmp / name, cfg, resume=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        got[name] = psnr_of(tmp / name, scene)
        print(json.dumps({"run": name, "steps": args.steps, "seconds": round(seconds, 1), "cpu_s": round(cpu, 1),
                          "object_psnr": round(got[name][0], 2), "image_psnr": round(got[name][1], 2),
                          "load": round(os.getloadavg()[0], 1)}), flush=True)
    print(json.dumps({"object_psnr_gain_db": round(got["region"][0] - got["whole"][0], 2),
                      "image_psnr_gain_db": round(got["region"][1] - got["whole"][1], 2)}), flush=True)


if __name__ == "__main__":
    main()
