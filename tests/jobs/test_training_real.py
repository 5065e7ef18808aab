"""Real engine training of a tiny analytic scene through the Python API, and crash recovery of a real
training job: SIGKILL in a subprocess, then ``resume()`` in this process continues from the checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.engine.checkpoint import checkpoint_step, list_checkpoints
from nerf_widgets.jobs import shutdown_runners
from nerf_widgets.store import jobs as job_store
from nerf_widgets.studio import Project, Studio
from tests.jobs.jobs_scene import make_scene

pytestmark = pytest.mark.slow
TINY = {"method": "fast", "preset": "quick", "batch_rays": 256, "eval_every": 4, "checkpoint_every": 2,
        "eval_max_side": 32, "threads": 1}
WAIT_S = 900  # the engine's set-up alone took ~25 s on the shared 2-core machine


@pytest.fixture
def scene_project(tmp_path: Path) -> Iterator[Project]:
    studio = Studio(tmp_path / "home")
    project = studio.create_project("spheres")
    make_scene(project.dir / "poses")
    project.transition("upload_images", "test scene")
    project.transition("skip_pose_estimation", "analytic poses")
    yield project
    shutdown_runners()
    studio.close()


def test_real_training_reports_metrics_and_renders(scene_project: Project) -> None:
    job = scene_project.start_training(max_steps=8, **{k: v for k, v in TINY.items() if k not in ("method",
                                                                                                    "preset")})
    row = job.wait(WAIT_S)
    assert row.state == "succeeded", row.error
    assert scene_project.state == "TrainingCompleted"
    m = job.metrics()
    assert [p[0] for p in m["psnr"]] == list(range(1, 9))
    assert [p[0] for p in m["eval_psnr"]] == [4, 8] and all(0 < p[2] < 60 for p in m["eval_psnr"])
    assert row.progress["checkpoint_step"] == 8 and row.progress["result"]["step"] == 8
    png = job.render_view(azimuth=45, elevation=20, size=32)
    assert png[:4] == b"\x89PNG"
    snap = job.bus.snapshot().state
    assert snap["preview"]["step"] == 8 and snap["progress"]["step"] == 8


CHILD = textwrap.dedent("""
    import time
    from nerf_widgets.studio import Studio
    studio = Studio({home!r})
    project = studio.project({project!r})
    job = project.start_training(max_steps=100000, **{tiny!r})
    print(job.id, flush=True)
    time.sleep(600)
""")


def test_sigkilled_training_resumes_from_its_checkpoint(scene_project: Project) -> None:
    tiny = {k: v for k, v in TINY.items() if k not in ("method", "preset")}
    script = CHILD.format(home=str(scene_project.studio.home), project=scene_project.id, tiny=tiny)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    db = scene_project.db
    try:
        job_id = child.stdout.readline().strip()  # type: ignore[union-attr]
        deadline = time.monotonic() + WAIT_S
        while job_store.get_job(db=db, job_id=job_id).progress.get("checkpoint_step", 0) < 4:
            assert time.monotonic() < deadline and child.poll() is None, "the child made no progress"
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    [job] = scene_project.jobs()  # the interrupted job is listed, marked failed
    row = job.record()
    assert job.id == job_id and row.state == "failed" and row.error.startswith("Interrupted")
    assert scene_project.state == "TrainingInterrupted"  # what is true: no kernel runs it, resume is offered
    assert {"resume_training", "retry"} <= set(scene_project.allowed_transitions())
    last_ckpt = checkpoint_step(list_checkpoints(row.run_dir or "")[-1])
    job.resume()
    assert scene_project.history[-1].transition == "resume_training"
    deadline = time.monotonic() + WAIT_S
    while "resumed_from" not in job.progress or job.progress["step"] < last_ckpt + 2:
        assert time.monotonic() < deadline and not job.finished, job.record().error
        time.sleep(0.05)
    job.cancel(wait=True)
    attempts = job.attempts()
    assert [a.state for a in attempts] == ["failed", "cancelled"]
    assert job.record().progress["resumed_from"] == last_ckpt > 0  # the step count continued
    psnr_steps = [p[0] for p in job.metrics(max_points=10**6)["psnr"]]
    assert psnr_steps == list(range(1, psnr_steps[-1] + 1)) and psnr_steps[-1] >= last_ckpt + 2
    assert scene_project.state == "TrainingCompleted"  # cancelled with a checkpoint: a usable model
