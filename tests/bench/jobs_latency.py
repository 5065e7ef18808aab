"""Jobs benchmarks (JSON lines on stdout):

1. event latency: trainer callback (``on_step``) -> the TrainingPanel's view update, median / p99 (ms);
2. main-thread latency while training runs on both cores: a trivial call, and a 10 ms sleep's overshoot;
3. monitoring overhead: steps/s of the same workload bare, through the runner, and through the runner
   with TrainingPanel + SystemMonitor attached (target: < 5 % slower than bare).

Run: .venv/bin/python tests/bench/jobs_latency.py [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jobs_common import load, passthrough_config, percentiles, torch_train  # noqa: E402

from nerf_widgets.jobs import register_job_type, shutdown_runners  # noqa: E402
from nerf_widgets.jobs.training import make_training_factory  # noqa: E402
from nerf_widgets.studio import Studio  # noqa: E402

register_job_type("bench_train", make_training_factory(trainer=torch_train, config_builder=passthrough_config))


def posed_project(studio: Studio, name: str) -> Any:
    project = studio.create_project(name)
    project.transition("upload_images")
    project.transition("skip_pose_estimation")
    return project


def start(project: Any, steps: int) -> Any:
    from nerf_widgets.jobs.api import start_training

    return start_training(db=project.db, home=project.studio.home, project_id=project.id, project_dir=project.dir,
                          job_type="bench_train", max_steps=steps)


def bare_steps_per_s(steps: int) -> float:
    """The workload alone on a background thread (as jobs run; torch is much slower on the main thread here)."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        t = threading.Thread(target=lambda: result.update(torch_train(Path(d), Path(d), {"max_steps": steps})))
        t.start()
        t.join()
    return steps / result["seconds"]


CALLBACK_S: list[float] = []


def _time_on_step() -> None:
    """Measure what monitoring costs the training thread itself: the wall time spent in ``on_step``."""
    from nerf_widgets.jobs import training

    original = training.JobTrainCallbacks.on_step

    def timed(self: Any, info: Any) -> None:
        t0 = time.perf_counter()
        original(self, info)
        CALLBACK_S.append(time.perf_counter() - t0)

    training.JobTrainCallbacks.on_step = timed  # type: ignore[method-assign]


def run_job(studio: Studio, steps: int, *, widgets: bool, probe_main: bool) -> dict[str, Any]:
    from nerf_widgets.widgets.system_monitor import SystemMonitor
    from nerf_widgets.widgets.training_panel import TrainingPanel

    project = posed_project(studio, f"bench {time.monotonic_ns()}")
    job = start(project, steps)
    latencies: list[float] = []
    panel = monitor = None
    if widgets:
        panel, monitor = TrainingPanel(project, job=job), SystemMonitor(studio)
        original = panel._on_view

        def timed(view: dict[str, Any], batch: Any) -> None:
            original(view, batch)
            now = time.time()
            latencies.extend((now - e.time) * 1000 for e in batch.events if e.kind == "step")

        panel._watch.on_change = timed
    calls, overshoot = [], []
    while not job.finished:
        if probe_main:
            t0 = time.perf_counter()
            sum(range(1000))  # a trivial cell
            calls.append((time.perf_counter() - t0) * 1000)
            t1 = time.perf_counter()
            time.sleep(0.01)
            overshoot.append((time.perf_counter() - t1 - 0.01) * 1000)
        else:
            time.sleep(0.05)
    row = job.record()
    step_s = [1 / p[2] for p in job.metrics(["steps_per_s"], max_points=10**6)["steps_per_s"] if p[2] > 0]
    for w in (panel, monitor):
        if w is not None:
            w.close()
    out: dict[str, Any] = {"steps_per_s": steps / row.progress["result"]["seconds"], "step_ms": percentiles(
        [x * 1000 for x in step_s])}
    if CALLBACK_S:
        out["on_step_ms"] = percentiles([x * 1000 for x in CALLBACK_S])
        CALLBACK_S.clear()
    if latencies:
        out["event_latency_ms"] = percentiles(latencies)
    if calls:
        out["main_call_ms"], out["main_sleep_overshoot_ms"] = percentiles(calls), percentiles(overshoot)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    print(json.dumps({"bench": "setup", "torch_threads": torch.get_num_threads(), "load_avg_1m": load()}))
    _time_on_step()
    with tempfile.TemporaryDirectory() as home:
        studio = Studio(home)
        bare, runner_only, watched = [], [], []
        for _ in range(args.repeats):  # interleaved, so other helpers' load hits all three alike
            bare.append(bare_steps_per_s(args.steps))
            runner_only.append(run_job(studio, args.steps, widgets=False, probe_main=False)["steps_per_s"])
            res = run_job(studio, args.steps, widgets=True, probe_main=True)
            watched.append(res["steps_per_s"])
        best = {"bare": max(bare), "runner": max(runner_only), "runner_widgets": max(watched)}
        print(json.dumps({"bench": "monitoring_overhead", "steps_per_s_best_of": best, "all": {
            "bare": bare, "runner": runner_only, "runner_widgets": watched},
            "overhead_runner_pct": 100 * (1 - best["runner"] / best["bare"]),
            "overhead_widgets_pct": 100 * (1 - best["runner_widgets"] / best["bare"]), "load_avg_1m": load()}))
        print(json.dumps({"bench": "training_thread_cost_with_widgets", "on_step_ms": res["on_step_ms"],
                          "step_ms": res["step_ms"],
                          "on_step_share_pct": 100 * res["on_step_ms"]["median"] / res["step_ms"]["median"]}))
        print(json.dumps({"bench": "event_latency_callback_to_widget", **res["event_latency_ms"],
                          "note": "includes coalescing to <= 10 updates/s"}))
        print(json.dumps({"bench": "main_thread_during_training", "trivial_call_ms": res["main_call_ms"],
                          "sleep_10ms_overshoot_ms": res["main_sleep_overshoot_ms"], "load_avg_1m": load()}))
        shutdown_runners()
        studio.close()


if __name__ == "__main__":
    main()
