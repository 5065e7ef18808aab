"""End to end in a real browser: start a short training from the TrainingPanel, watch the bqplot PSNR
curve gain points, reload the page, and see the curve restored with every point (no gap).

The kernel trains with the fake trainer of tests/jobs (same callback contract as the engine) so the
test exercises the UI path in seconds; the engine itself is tested in tests/jobs/test_training_real.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ARTIFACTS = REPO / "tests" / "artifacts"
STEPS = 3000

SETUP = f"""
import sys
sys.path.insert(0, {str(REPO / "tests" / "jobs")!r})
from fake_trainer import fake_config, fake_train
from nerf_widgets.jobs import register_job_type
from nerf_widgets.jobs.training import make_training_factory
register_job_type("train", make_training_factory(trainer=fake_train, config_builder=fake_config))

from nerf_widgets.studio import Studio
from nerf_widgets.widgets.training_panel import TrainingPanel
studio = Studio()
project = studio.create_project("Training e2e")
project.transition("upload_images")
project.transition("skip_pose_estimation")
panel = TrainingPanel(project)
panel.max_steps.value = {STEPS}
panel
"""

COUNT_JS = """() => {
  const figs = document.querySelectorAll('.nw-training-panel .nw-curves .bqplot');
  if (figs.length < 2) return -1;
  const path = figs[1].querySelector('g.curve path.line');
  const d = path ? (path.getAttribute('d') || '') : '';
  return (d.match(/[ML]/g) || []).length;
}"""


def write_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell('print("ready")')]
    path = folder / "training.ipynb"
    nbformat.write(nb, path)
    return path


def psnr_points(page: Any) -> int:
    return int(page.evaluate(COUNT_JS))


def wait_for(page: Any, pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            page.screenshot(path=str(ARTIFACTS / "e2e_training_timeout.png"), full_page=True)
            raise TimeoutError(f"{what} not seen within {timeout_s:.0f} s")
        page.wait_for_timeout(100)


def test_training_curve_lives_and_survives_reload(tmp_path: Path) -> None:
    from nerf_widgets.studio import Studio
    from nerf_widgets.widgets.training_panel import thin

    ARTIFACTS.mkdir(exist_ok=True)
    nb = write_notebook(tmp_path)
    with running_lab(tmp_path, [nb]) as lab, open_browser() as page:
        run_notebook(page, lab, "training.ipynb", done_text="ready", timeout_s=120)
        page.locator(".nw-training-panel button.nw-train-start").click()
        wait_for(page, lambda: psnr_points(page) > 5, 60, "the first points of the PSNR curve")
        seen = psnr_points(page)
        wait_for(page, lambda: psnr_points(page) > seen, 30, "the PSNR curve gaining points")
        wait_for(page, lambda: "succeeded" in page.locator(".nw-training-panel .nw-job-state").inner_text(), 120,
                 "the job finishing")
        page.locator(".nw-training-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "e2e_training_live.png"), full_page=True)
        before = psnr_points(page)
        page.keyboard.press("Control+s")
        page.wait_for_timeout(1000)
        page.reload()
        page.locator(".nw-training-panel").wait_for(timeout=60_000)
        wait_for(page, lambda: psnr_points(page) == before, 30, "the curve restored after the reload")
        assert page.locator(".nw-training-panel .nw-step").inner_text() == str(STEPS)
        page.locator(".nw-training-panel").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "e2e_training_reloaded.png"), full_page=True)
    with Studio(lab.home) as studio:
        (project,) = [p for p in studio.projects() if p.name == "Training e2e"]
        (job,) = project.jobs()
        series = job.metrics(["psnr"], max_points=10**6)["psnr"]
        assert [p[0] for p in series] == list(range(1, STEPS + 1))  # stored without gap or duplicate
        assert before == len(thin(series))  # the browser drew every point the panel keeps (thinned evenly)
        assert project.state == "TrainingCompleted"
