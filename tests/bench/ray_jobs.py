"""Ray executor benchmarks (JSON lines on stdout), on a local Ray cluster this script starts and stops:

1. event latency, worker step (the trainer's ``on_step``) -> the notebook's job bus, median / p99 (ms), local
   job vs the same job on Ray (the trainer stamps each step with ``time.time()`` in its ETA field);
2. steps/s of the same torch workload (jobs_common.torch_train's shape) locally vs on the local Ray cluster
   with the same 2 CPUs (target: < 5 % slower);
3. time from ``start_training`` to the first step reaching the bus on Ray (a fresh worker process per attempt).

Run: .venv/bin/python tests/bench/ray_jobs.py [--steps 300] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parents[1]
sys.path[:0] = [str(BENCH), str(ROOT)]
from jobs_common import load, passthrough_config, percentiles  # noqa: E402
from ray_common import stamped_train  # noqa: E402

from nerf_widgets.jobs import register_job_type, shutdown_runners  # noqa: E402
from nerf_widgets.jobs.training import make_training_factory  # noqa: E402
from nerf_widgets.studio import Studio  # noqa: E402
from tests.jobs.cluster.local_cluster import local_cluster  # noqa: E402

register_job_type("bench_ray_train", make_training_factory(trainer=stamped_train, config_builder=passthrough_config))


def run_once(studio: Studio, executor: str, steps: int) -> dict[str, Any]:
    project = studio.create_project(f"{executor}-{time.time_ns()}")
    project.transition("upload_images")
    project.transition("skip_pose_estimation")
    latencies: list[float] = []
    first: list[float] = []
    lock = threading.Lock()

    def on_batch(batch: Any) -> None:
        with lock:
            for ev in batch.events:
                if ev.kind == "step":
                    latencies.append(1000 * (ev.time - float(ev.data["eta_s"])))
                    if not first:
                        first.append(ev.time)

    t_call = time.time()
    job = project.start_training(max_steps=steps, job_type="bench_ray_train", executor=executor, num_cpus=2)
    sub = job.bus.subscribe(on_batch, max_rate_hz=1000, queue_size=100000, name="bench")
    row = job.wait()
    sub.close()
    assert row.state == "succeeded", row.error
    result = row.progress["result"]
    return {"executor": executor, "threads": result["threads"], "latency_ms": percentiles(latencies),
            "steps_per_s": steps / result["seconds"],
            "start_to_first_step_s": first[0] - t_call, "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)])}
    with local_cluster(2, env=env) as cluster, tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "home", executor="ray", address=cluster.address)
        runs: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
        for _ in range(args.repeats):
            for executor in ("local", "ray"):
                run = run_once(studio, executor, args.steps)
                runs[executor].append(run)
                print(json.dumps({"bench": "ray_jobs_run", **run}), flush=True)
        shutdown_runners()
        best = {k: max(r["steps_per_s"] for r in v) for k, v in runs.items()}
        median = {k: statistics.median(r["steps_per_s"] for r in v) for k, v in runs.items()}
        print(json.dumps({"bench": "ray_jobs_summary", "steps": args.steps, "repeats": args.repeats,
                          "latency_median_ms": {k: min(r["latency_ms"]["median"] for r in v) for k, v in runs.items()},
                          "latency_p99_ms": {k: min(r["latency_ms"]["p99"] for r in v) for k, v in runs.items()},
                          "steps_per_s_best": best, "ray_overhead_pct": 100 * (1 - best["ray"] / best["local"]),
                          "steps_per_s_median": median,
                          "ray_overhead_median_pct": 100 * (1 - median["ray"] / median["local"]),
                          "ray_start_to_first_step_s": [r["start_to_first_step_s"] for r in runs["ray"]]}), flush=True)


if __name__ == "__main__":
    main()
