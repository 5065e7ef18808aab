"""Studio API: project.region / set_region / reset_region on a real project (SQLite file, poses on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import NotFoundError, ValidationError
from tests.poses.conftest import noise_image, write_image
from tests.poses.poses_synthetic import ring_cameras


def _posed(project, tmp_path: Path, aabb: list | None = None, n: int = 6) -> dict:
    files = [write_image(tmp_path / "up" / f"r_{k}.png", noise_image(k, (64, 48))) for k in range(n)]
    project.upload_images([str(f) for f in files])
    frames = [{"file_path": f"./train/r_{k}", "transform_matrix": c.tolist()} for k, c in enumerate(ring_cameras(n))]
    payload: dict = {"camera_angle_x": 0.7, "frames": frames}
    if aabb is not None:
        payload["aabb"] = aabb
    (tmp_path / "transforms_train.json").write_text(json.dumps(payload))
    project.import_poses(tmp_path / "transforms_train.json")
    return json.loads(project.path("poses", "transforms.json").read_text())


def test_region_needs_poses(project) -> None:
    with pytest.raises(NotFoundError, match="no poses yet"):
        project.region()


def test_proposed_then_set_then_reset_is_stored_and_in_history(project, tmp_path) -> None:
    _posed(project, tmp_path)
    proposed = project.region()
    assert proposed.source == "proposed" and proposed.contains(np.zeros((1, 3)))[0]
    state = project.state

    chosen = project.set_region(center=[0.1, 0.0, 0.2], size=[1.0, 0.8, 0.6], yaw_deg=30.0, floor_cut=True)
    assert np.allclose(chosen.center, [0.1, 0, 0.2]) and abs(chosen.yaw_deg - 30.0) < 1e-6
    again = project.studio.project(project.id).region()  # a fresh handle reads it from the database
    assert np.allclose(again.size, [1.0, 0.8, 0.6]) and again.floor_cut and again.source == "set"
    last = project.history[-1]
    assert last.transition == "set_region" and last.from_state == last.to_state == state
    assert "size [1.0, 0.8, 0.6]" in last.reason

    partial = project.set_region(size=[2.0, 2.0, 2.0])  # the rest stays as set
    assert np.allclose(partial.center, [0.1, 0, 0.2]) and abs(partial.yaw_deg - 30.0) < 1e-6

    back = project.reset_region()
    assert np.allclose(back.center, proposed.center) and project.region().source == "proposed"
    assert [h.transition for h in project.history[-3:]] == ["set_region", "set_region", "reset_region"]
    assert project.state == state


@pytest.mark.parametrize(("values", "match"), [
    ({"size": [0.0, 1.0, 1.0]}, "size must be positive"),
    ({"size": [1.0, -1.0, 1.0]}, "size must be positive"),
    ({"center": [float("nan"), 0.0, 0.0]}, "center contains NaN"),
    ({"center": [0.0, 0.0, 3.9], "size": [0.05, 0.05, 0.05]}, "seen by none of the 6 cameras"),
])
def test_bad_regions_are_refused_and_nothing_is_stored(project, tmp_path, values, match) -> None:
    _posed(project, tmp_path)
    before = len(project.history)
    with pytest.raises(ValidationError, match=match):
        project.set_region(**values)
    assert project.region().source == "proposed" and len(project.history) == before


def test_aabb_of_an_imported_transforms_becomes_the_region(project, tmp_path) -> None:
    written = _posed(project, tmp_path, aabb=[[-0.5, -0.4, -0.3], [0.5, 0.4, 0.9]])
    region = project.region()
    scale = written["normalization"]["scale"]
    assert region.source == "import"
    assert np.allclose(region.size, scale * np.array([1.0, 0.8, 1.2]))
    m = np.array(written["normalization"]["matrix"])
    assert np.allclose(region.center, m[:3, :3] @ [0, 0, 0.3] + m[:3, 3])
    assert project.history[-1].transition == "set_region"


def test_new_poses_bring_a_new_proposal(project, tmp_path) -> None:
    _posed(project, tmp_path)
    project.set_region(size=[0.5, 0.5, 0.5])
    frames = [{"file_path": f"./train/r_{k}", "transform_matrix": c.tolist()}
              for k, c in enumerate(ring_cameras(5, radius=6.0))]
    (tmp_path / "other.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": frames}))
    project.import_poses(tmp_path / "other.json")
    assert project.region().source == "proposed"
