"""``project.estimate_poses`` as a background job: progress by stage, lifecycle, cancel, refusals before any job row."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from nerf_widgets.core.errors import StateConflictError, ValidationError
from nerf_widgets.jobs import shutdown_runners
from nerf_widgets.poses.types import PoseProgress
from nerf_widgets.store import jobs as job_store
from nerf_widgets.store.regions import get_region_row

WAIT_S = 600


@pytest.fixture
def uploaded(project, scene) -> Iterator[object]:  # type: ignore[no-untyped-def]
    folder, _ = scene
    project.upload_images([str(p) for p in sorted(folder.glob("*.png"))])
    yield project
    shutdown_runners()


@pytest.mark.slow
def test_estimation_job_reaches_poses_estimated(uploaded) -> None:  # type: ignore[no-untyped-def]
    events: list[PoseProgress] = []
    job = uploaded.estimate_poses(progress=events.append)
    row = job.wait(WAIT_S)
    assert row.state == "succeeded", row.error
    assert uploaded.state == "PosesEstimated"
    result = row.progress["result"]
    assert result["num_images"] == 20 and result["num_registered"] >= 18
    assert uploaded.pose_report().num_registered == result["num_registered"]
    assert row.progress["stage"] == "write" and row.progress["fraction"] == 1.0
    stages = list(dict.fromkeys(e.stage for e in events))  # the caller's callback saw every stage, in order
    assert stages == ["check", "extract", "match", "map", "normalize", "write"]
    proposal = get_region_row(db=uploaded.db, project_id=uploaded.id)  # stored by the job, before anyone asked
    assert proposal is not None and proposal.proposed is not None
    region = uploaded.region()
    # the objects sit at the cameras' focus (test_region's COLMAP case: the box's top face is not the floor)
    assert region.source == "proposed" and region.contains(np.zeros((1, 3)))[0], region.to_dict()


def test_cancel_keeps_state_and_writes_nothing(uploaded) -> None:  # type: ignore[no-untyped-def]
    extracting = threading.Event()

    def on_progress(event: PoseProgress) -> None:
        if event.stage == "extract":
            extracting.set()

    job = uploaded.estimate_poses(progress=on_progress)
    assert extracting.wait(WAIT_S)
    job.cancel()
    row = job.wait(WAIT_S)
    assert row.state == "cancelled"
    assert uploaded.state == "ImagesUploaded"
    assert list(uploaded.path("poses").iterdir()) == []


def test_refusals_create_no_job(project, uploaded) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="matcher must be one of"):
        uploaded.estimate_poses(matcher="bogus")
    with pytest.raises(ValidationError, match="mapper must be one of"):
        uploaded.estimate_poses(mapper="bogus")
    assert job_store.list_jobs(db=uploaded.db, project_id=uploaded.id) == []
    empty = project.studio.create_project("no images")
    with pytest.raises(StateConflictError, match="Cannot estimate poses"):
        empty.estimate_poses()
    assert job_store.list_jobs(db=empty.db, project_id=empty.id) == []
    gate = threading.Event()
    first = uploaded.estimate_poses(should_stop=lambda: gate.wait(WAIT_S) and True)  # holds in its first check
    with pytest.raises(StateConflictError, match="already running"):
        uploaded.estimate_poses()
    gate.set()
    assert first.wait(WAIT_S).state == "cancelled"
    assert [j.id for j in uploaded.jobs()] == [first.id]
