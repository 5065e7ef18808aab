"""A script that ends while a training job runs exits cleanly: the job is cancelled at interpreter exit, stops
at its next step with a checkpoint, and the process neither aborts nor prints a native error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nerf_widgets.engine.checkpoint import list_checkpoints
from nerf_widgets.store import jobs as job_store
from nerf_widgets.studio import Studio

REPO = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from tests.jobs.fake_trainer import fake_config, torch_busy_train
    from nerf_widgets.jobs import register_job_type
    from nerf_widgets.jobs.api import start_training
    from nerf_widgets.jobs.training import make_training_factory
    from nerf_widgets.studio import Studio
    register_job_type("busy_train", make_training_factory(trainer=torch_busy_train, config_builder=fake_config))
    studio = Studio({home!r})
    p = studio.create_project("exit")
    p.transition("upload_images")
    p.transition("skip_pose_estimation")
    job = start_training(db=p.db, home=studio.home, project_id=p.id, project_dir=p.dir, job_type="busy_train",
                         max_steps=10**9)
    while job.progress.get("step", 0) < 3:  # torch is busy on every core from here on
        pass
    if {cancel!r}:
        job.cancel()  # asked to stop, but the script ends before the job has
    print(job.id, p.id, flush=True)
""")


@pytest.mark.parametrize("cancel", [False, True], ids=["running", "cancel-just-called"])
def test_a_script_ending_mid_training_exits_cleanly(tmp_path: Path, cancel: bool) -> None:
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(repo=str(REPO), home=str(home), cancel=cancel)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "terminate called" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    job_id, project_id = proc.stdout.split()
    with Studio(home) as studio:
        row = job_store.get_job(db=studio.db, job_id=job_id)
        assert row.state == "cancelled" and row.finished_at is not None
        assert [a.state for a in job_store.list_attempts(db=studio.db, job_id=job_id)] == ["cancelled"]
        ckpts = list_checkpoints(row.run_dir or "")
        assert len(ckpts) == 1 and row.progress["checkpoint_step"] >= 3  # saved where it stopped
        assert studio.project(project_id).state == "TrainingCompleted"  # stopped with a usable checkpoint
