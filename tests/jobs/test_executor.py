"""The executor seam without a cluster: choosing one, per-job override, and that importing the package
never imports ray (the Ray tests with a real cluster are in tests/jobs/cluster/)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.jobs import register_job_type, shutdown_runners
from nerf_widgets.jobs.executor import ENV_ADDRESS, ExecutorChoice, choose_executor
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.studio import Studio
from tests.jobs.fake_trainer import fake_config, fake_train

register_job_type("exec_fake_train", make_training_factory(trainer=fake_train, config_builder=fake_config))


def test_importing_the_package_and_opening_a_studio_never_imports_ray(tmp_path: Path) -> None:
    code = ("import sys, nerf_widgets, nerf_widgets.jobs, nerf_widgets.studio, nerf_widgets.widgets\n"
            "from nerf_widgets.jobs import executor, training\n"
            f"nerf_widgets.studio.Studio({str(tmp_path / 'home')!r}, executor='local').projects()\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_choice_comes_from_the_arguments_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_ADDRESS, raising=False)
    assert choose_executor() == ExecutorChoice("local", None)
    monkeypatch.setenv(ENV_ADDRESS, "ray://head:10001")
    assert choose_executor() == ExecutorChoice("ray", "ray://head:10001")
    assert choose_executor("local") == ExecutorChoice("local", None)
    assert choose_executor("ray", "10.0.0.1:6379") == ExecutorChoice("ray", "10.0.0.1:6379")
    with pytest.raises(ValidationError, match="Unknown executor 'dask'"):
        choose_executor("dask")
    with pytest.raises(ValidationError, match="address= is for executor='ray'"):
        choose_executor("local", "10.0.0.1:6379")


@pytest.fixture
def ray_studio(tmp_path: Path) -> Iterator[Studio]:
    pytest.importorskip("ray")
    studio = Studio(tmp_path / "home", executor="ray", address="127.0.0.1:1")  # nothing listens there
    yield studio
    shutdown_runners()
    studio.close()


def test_a_job_overrides_the_studio_executor(ray_studio: Studio) -> None:
    assert ray_studio.executor == ExecutorChoice("ray", "127.0.0.1:1") and "executor='ray'" in repr(ray_studio)
    project = ray_studio.create_project("here")
    project.transition("upload_images", "test")
    project.transition("skip_pose_estimation", "test")
    job = project.start_training(max_steps=30, job_type="exec_fake_train", executor="local")
    row = job.wait(60)
    assert row.state == "succeeded", row.error
    assert "executor" not in row.params and "executor" not in row.progress
    assert [p[0] for p in job.metrics()["psnr"]][-1] == 30
