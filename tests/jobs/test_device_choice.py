"""The device a training job reserves is the one its engine trains on; a GPU request without a visible GPU
is refused when the job is submitted, with why, and leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from nerf_widgets.core.errors import ResourceUnavailableError
from nerf_widgets.domain import lifecycle
from nerf_widgets.jobs import register_job_type, shutdown_runners
from nerf_widgets.jobs.runner import runner_for
from nerf_widgets.jobs.training import engine_config, make_training_factory
from nerf_widgets.store import jobs as job_store
from nerf_widgets.studio import Project, Studio

SEEN: list[dict[str, Any]] = []


def recording_train(data_dir: Path, run_dir: Path, config: Any, callbacks: Any = None, resume: bool = True) -> dict:
    """Stands in for ``engine.train`` (the config is the engine's real one): records where the engine would run
    and what the job holds on the resource pool while it does."""
    runner = runner_for(STUDIO[0].db, STUDIO[0].home)
    SEEN.append({"engine": config.device, "held": {j: r.device for j, r in runner.pool.holders().items()}})
    return {"device": config.device}


register_job_type("recording_train", make_training_factory(trainer=recording_train, config_builder=engine_config))
STUDIO: list[Studio] = []


@pytest.fixture
def posed(tmp_path: Path) -> Iterator[Project]:
    studio = Studio(tmp_path / "home")
    STUDIO[:] = [studio]
    project = studio.create_project("scene")
    lifecycle.transition(db=studio.db, project_id=project.id, name="upload_images")
    lifecycle.transition(db=studio.db, project_id=project.id, name="skip_pose_estimation")
    yield project
    shutdown_runners()
    studio.close()


def _start(project: Project, device: str | None) -> Any:
    from nerf_widgets.jobs.api import start_training

    return start_training(db=project.db, home=project.studio.home, project_id=project.id, project_dir=project.dir,
                          job_type="recording_train", device=device, max_steps=5)


@pytest.mark.parametrize("device", [None, "auto", "cpu", "cuda"])
def test_the_job_reserves_the_device_the_engine_trains_on(posed: Project, device: str | None) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("a GPU request without a GPU is the refusal test below")
    SEEN.clear()
    job = _start(posed, device)
    assert job.wait(60).state == "succeeded"
    expected = "cuda:0" if device == "cuda" or (device != "cpu" and torch.cuda.is_available()) else "cpu"
    assert SEEN == [{"engine": expected, "held": {job.id: expected}}]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a visible GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_visible_gpu_is_refused_at_submit(posed: Project, device: str) -> None:
    with pytest.raises(ResourceUnavailableError, match="^No CUDA device is visible: ") as err:
        posed.start_training(device=device, max_steps=5)
    assert "NVML" not in str(err.value) and "not present" not in str(err.value)
    assert posed.state == "PosesEstimated"
    assert job_store.list_jobs(db=posed.db, project_id=posed.id) == []
    assert list((posed.dir / "runs").iterdir()) == []
