"""Studio API: project.import_poses / estimate_poses move the lifecycle and write the project's poses/ folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nerf_widgets.core.errors import StateConflictError
from tests.poses.conftest import noise_image, write_image
from tests.poses.poses_synthetic import ring_cameras


def test_import_poses_matches_upload_names_and_moves_lifecycle(project, tmp_path):
    files = [write_image(tmp_path / "up" / f"r_{k}.png", noise_image(k, (64, 48))) for k in range(4)]
    project.upload_images([str(f) for f in files])
    frames = [{"file_path": f"./train/r_{k}", "transform_matrix": c.tolist()} for k, c in enumerate(ring_cameras(3))]
    (tmp_path / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": frames}))

    report = project.import_poses(tmp_path / "transforms_train.json")
    assert project.state == "PosesEstimated"
    assert report.num_registered == 3 and [im.reason for im in report.unregistered] == [
        "no frame in the poses file (not used)"]
    data = json.loads(project.path("poses", "transforms.json").read_text())
    working = {project.path("images", rec.working_file) for rec in project.images()}
    assert {(project.path("poses") / f["file_path"]).resolve() for f in data["frames"]} < working
    assert project.pose_report().source == "import:transforms"


def test_estimate_poses_failure_keeps_state_and_writes_nothing(project, tmp_path):
    files = [write_image(tmp_path / "up" / f"dark_{k}.png", np.full((48, 64), k, np.uint8)) for k in range(3)]
    project.upload_images([str(f) for f in files])
    before = project.state
    row = project.estimate_poses().wait(120)  # a background job now: its error carries the explanation
    assert row.state == "failed" and "blank image" in (row.error or "")
    assert project.state == before
    assert not project.path("poses", "transforms.json").exists()


def test_poses_need_images(project, tmp_path):
    with pytest.raises(StateConflictError, match="Cannot manual poses: the project is in state Created"):
        project.import_poses(tmp_path / "transforms.json")
