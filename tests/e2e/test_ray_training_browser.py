"""End to end in a real browser: with a studio on a local Ray cluster, a training started from the
TrainingPanel runs in a Ray worker and the panel's PSNR curve grows from the events that come home.

The cluster is started and stopped here (tests/jobs/cluster/local_cluster.py); the kernel trains with the
fake trainer of tests/jobs, which the cluster's workers import from the same folder.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.ci import need_tool
from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab
from tests.e2e.test_training_browser import ARTIFACTS, figure, hidden_step, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]
STEPS = 400

SETUP = """
import sys
sys.path.insert(0, {jobs!r})
from fake_trainer import fake_config, fake_train
from nerf_widgets.jobs import register_job_type
from nerf_widgets.jobs.training import make_training_factory
slow_config = lambda params: dict(fake_config(params), overrides={{"sleep": 0.03}})  # ~12 s: the curve grows
register_job_type("train", make_training_factory(trainer=fake_train, config_builder=slow_config))

from nerf_widgets.studio import Studio
from nerf_widgets.widgets.training_panel import TrainingPanel
studio = Studio(executor="ray", address={address!r})
project = studio.create_project("Ray e2e")
project.transition("upload_images")
project.transition("skip_pose_estimation")
panel = TrainingPanel(project)
panel.max_steps.value = {steps}
panel
"""


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    need_tool(importlib.util.find_spec("ray") is not None, "Ray is not installed (pip install 'nerf_widgets[ray]')")
    from tests.jobs.cluster.local_cluster import local_cluster

    jobs = str(REPO / "tests" / "jobs")
    with local_cluster(2, env={"PYTHONPATH": os.pathsep.join([str(REPO), jobs])}) as cluster:
        yield cluster.address


def _spans(fig: dict) -> bool:
    return bool(fig["lines"]) and fig["lines"][0]["width"] >= 0.8 * fig["plotWidth"] > 100


def test_a_ray_job_started_from_the_panel_draws_a_growing_curve(tmp_path: Path, ray_address: str) -> None:
    from nerf_widgets.studio import Studio

    ARTIFACTS.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP.format(jobs=str(REPO / "tests" / "jobs"), address=ray_address,
                                                       steps=STEPS)),
                nbformat.v4.new_code_cell('print("ready")')]
    nbformat.write(nb, tmp_path / "ray_training.ipynb")
    with running_lab(tmp_path, [tmp_path / "ray_training.ipynb"]) as lab, open_browser() as page:
        run_notebook(page, lab, "ray_training.ipynb", done_text="ready", timeout_s=120)
        page.locator(".nw-training-panel button.nw-train-start").click()
        wait_for(page, lambda: hidden_step(page) > 5, "the first steps from the worker", 240)
        seen = hidden_step(page)
        wait_for(page, lambda: hidden_step(page) > seen, "the curve growing", 60)
        # drawn across: while points arrive the axis may rescale a frame before the line is redrawn (CI once read
        # the line at 67 % of the plot just after a step), so wait for the picture to settle rather than read it once
        wait_for(page, lambda: _spans(figure(page, "psnr")), "the PSNR line drawn across the plot", 30)
        wait_for(page, lambda: "succeeded" in page.locator(".nw-training-panel .nw-job-state").inner_text(),
                 "the job finishing", 240)
        page.locator(".nw-training-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "e2e_ray_training.png"), full_page=True)
    with Studio(lab.home) as studio:
        (project,) = [p for p in studio.projects() if p.name == "Ray e2e"]
        (job,) = project.jobs()
        row = job.record()
        assert row.params["executor"] == "ray" and row.progress["node"] and row.progress["worker_pid"] != os.getpid()
        assert [p[0] for p in job.metrics(["psnr"], max_points=10**6)["psnr"]] == list(range(1, STEPS + 1))
