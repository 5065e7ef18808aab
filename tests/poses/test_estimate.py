"""Estimation on rendered views with known cameras, and the failure paths (nothing half-written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import CancelledError, ValidationError
from nerf_widgets.poses.estimate import estimate_poses
from nerf_widgets.poses.geometry import CAMERA_RADIUS, normalize_scene, rotation_error_deg, umeyama
from nerf_widgets.poses.types import CameraPrior, PoseProgress
from nerf_widgets.poses.writer import read_ply
from tests.poses.conftest import noise_image, write_image


def _aligned_errors(out: Path, truth: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rotation errors (deg) and position errors (fraction of the camera radius) after a Sim3 fit."""
    frames = json.loads((out / "transforms.json").read_text())["frames"]
    est = {Path(f["file_path"]).name: np.array(f["transform_matrix"]) for f in frames}
    names = sorted(set(est) & set(truth))
    a, b = np.stack([est[n] for n in names]), np.stack([truth[n] for n in names])
    s, rot, t = umeyama(a[:, :3, 3], b[:, :3, 3])
    radius = CAMERA_RADIUS / normalize_scene(b).scale
    pos = np.linalg.norm(s * a[:, :3, 3] @ rot.T + t - b[:, :3, 3], axis=1) / radius
    ang = np.array([rotation_error_deg(rot @ x[:3, :3], y[:3, :3]) for x, y in zip(a, b, strict=False)])
    return ang, pos


def test_estimates_synthetic_scene_and_explains_the_bad_images(scene, tmp_path):
    folder, cams = scene
    images = sorted(folder.glob("*.png"))
    black = write_image(tmp_path / "extra" / "black.png", np.zeros((120, 160), np.uint8))
    stranger = write_image(tmp_path / "extra" / "stranger.png", noise_image(7))
    events: list[PoseProgress] = []
    out = tmp_path / "poses"
    # two "camera bodies" with the true focal as a 35 mm-equivalent prior (220 px on a 200 px long side)
    priors = {p: CameraPrior("Acme", "A" if k < 10 else "B", 220.0 * 36 / 200) for k, p in enumerate(images)}
    report = estimate_poses([*images, black, stranger], out, progress=events.append, camera_priors=priors)

    truth = {p.name: c for p, c in zip(images, cams, strict=False)}
    assert report.num_registered >= 0.9 * len(images)
    ang, pos = _aligned_errors(out, truth)
    assert np.median(ang) < 1.0 and np.median(pos) < 0.02, (np.median(ang), np.median(pos))
    reasons = {im.name: im.reason for im in report.unregistered}
    assert "all black" in reasons["black.png"]
    assert "no overlap" in reasons["stranger.png"]
    assert report.matcher == "exhaustive" and "21 images" in (report.matcher_reason or "")
    assert report.mapper == "incremental" and report.num_points3D > 100
    shared = sorted((c["images"], c["params"][0]) for c in report.cameras)
    assert [n for n, _ in shared][-2:] == [10, 10] and all(abs(f / 220.0 - 1) < 0.08 for _, f in shared[-2:]), shared
    assert 0 < (report.mean_reprojection_error or 0) < 1.5 and (report.mean_track_length or 0) > 2

    data = json.loads((out / "transforms.json").read_text())
    c2w = np.array([f["transform_matrix"] for f in data["frames"]])
    assert np.linalg.norm(c2w[:, :3, 3], axis=1).max() == pytest.approx(CAMERA_RADIUS)
    assert (c2w[:, :3, 1].mean(0) / np.linalg.norm(c2w[:, :3, 1].mean(0)))[2] > 0.99  # camera up -> world +Z
    assert all((out / f["file_path"]).resolve().is_file() for f in data["frames"])
    assert {"fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "p1", "p2"} <= set(data["frames"][0])
    xyz, _ = read_ply(out / "points3D.ply")
    assert len(xyz) == report.num_points3D and np.abs(np.median(xyz, 0)).max() < 1.0
    assert json.loads((out / "report.json").read_text())["num_registered"] == report.num_registered

    stages = [e.stage for e in events]
    assert stages[0] == "check" and stages[-1] == "write" and "map" in stages
    overall = [e.overall for e in events]
    assert overall == sorted(overall) and overall[-1] == 1.0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # staging removed


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert [p for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_fewer_than_three_images_fails_with_names(scene, tmp_path):
    folder, _ = scene
    out = tmp_path / "poses"
    with pytest.raises(ValidationError, match="at least 3 images") as err:
        estimate_poses(sorted(folder.glob("*.png"))[:2], out)
    assert "view_00.png" in str(err.value) and "view_01.png" in str(err.value)
    _assert_nothing_written(out)


def test_all_black_images_fail_listing_each(tmp_path):
    paths = [write_image(tmp_path / "in" / f"dark_{k}.png", np.zeros((64, 80), np.uint8)) for k in range(4)]
    out = tmp_path / "poses"
    with pytest.raises(ValidationError) as err:
        estimate_poses(paths, out)
    msg = str(err.value)
    assert all(f"dark_{k}.png: blank image (all black)" in msg for k in range(4)), msg
    assert set(err.value.details["images"]) == {p.name for p in paths}
    _assert_nothing_written(out)


def test_images_without_overlap_fail(tmp_path):
    paths = [write_image(tmp_path / "in" / f"wall_{k}.png", noise_image(k)) for k in range(4)]
    out = tmp_path / "poses"
    with pytest.raises(ValidationError, match="overlap") as err:
        estimate_poses(paths, out)
    assert all(f"wall_{k}.png: no overlap" in str(err.value) for k in range(4)), str(err.value)
    _assert_nothing_written(out)


def test_stop_request_cancels_and_keeps_the_previous_result(scene, tmp_path):
    folder, _ = scene
    out = tmp_path / "poses"
    out.mkdir()
    (out / "transforms.json").write_text("{\"frames\": []}")
    seen: list[str] = []

    def progress(event: PoseProgress) -> None:
        seen.append(event.stage)

    with pytest.raises(CancelledError, match="pose estimation cancelled during"):
        estimate_poses(sorted(folder.glob("*.png"))[:6], out, progress=progress,
                       should_stop=lambda: "extract" in seen)
    assert "match" not in seen
    assert (out / "transforms.json").read_text() == "{\"frames\": []}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poses"]
    shutil.rmtree(out)


def test_bad_arguments_are_rejected_before_any_work(scene, tmp_path):
    folder, _ = scene
    images = sorted(folder.glob("*.png"))[:3]
    with pytest.raises(ValidationError, match="matcher"):
        estimate_poses(images, tmp_path / "o", matcher="fastest")
    with pytest.raises(ValidationError, match="mapper"):
        estimate_poses(images, tmp_path / "o", mapper="magic")
    _assert_nothing_written(tmp_path / "o")


def test_global_mapper_with_sequential_matching(scene, tmp_path):
    folder, cams = scene
    images = sorted(folder.glob("*.png"))
    # one thread: with more, SIFT's feature order varies, and GLOMAP on this small ring sometimes lands degrees off
    # (3.5 deg on CI, 5.0 deg in one of four runs here); with one, runs agree exactly
    runs = [estimate_poses(images, tmp_path / f"poses{k}", matcher="sequential", mapper="global", masks=False,
                           threads=1) for k in range(2)]
    report = runs[0]
    assert report.matcher == "sequential" and (report.mapper == "global" or "fell back" in report.mapper_reason)
    assert report.num_registered >= 0.9 * len(images)
    ang, pos = _aligned_errors(tmp_path / "poses0", {p.name: c for p, c in zip(images, cams, strict=True)})
    assert np.median(ang) < 1.0 and np.median(pos) < 0.02, (np.median(ang), np.median(pos))
    assert (tmp_path / "poses0" / "transforms.json").read_text() == (tmp_path / "poses1" / "transforms.json").read_text()
    with pytest.raises(ValidationError, match="threads must be at least 1"):
        estimate_poses(images, tmp_path / "none", threads=0)
    assert not (tmp_path / "none").exists()


class _Image:
    def __init__(self, centre: np.ndarray) -> None:
        self.centre, self.has_pose = centre, True

    def projection_center(self) -> np.ndarray:
        return self.centre


def test_collapsed_global_solution_is_detected():
    from nerf_widgets.poses.estimate import _collapsed

    class Rec:
        def __init__(self, centres: list[np.ndarray]) -> None:
            self.images = {i: _Image(c) for i, c in enumerate(centres)}

    ring = [np.array([np.cos(a), np.sin(a), 0.3]) for a in np.linspace(0, 6, 20)]
    bunched = [np.full(3, 1e-3 * i) for i in range(19)] + [np.array([4.0, 0.0, 0.0])]
    assert not _collapsed(Rec(ring)) and _collapsed(Rec(bunched))
