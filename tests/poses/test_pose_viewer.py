"""PoseViewer: frusta geometry and colours, and the widget built on real pose folders (standalone and in a project)."""

from __future__ import annotations

import json

import numpy as np
import pythreejs as three

from nerf_widgets.poses.imports import import_poses
from nerf_widgets.widgets.panel import StudioContext
from nerf_widgets.widgets.pose_viewer import PoseViewer, error_colors, frustum_segments
from tests.poses.conftest import noise_image, write_image
from tests.poses.poses_synthetic import ring_cameras


def test_frustum_segments_start_at_the_camera_and_point_down_minus_z():
    c2w = np.eye(4)[None].copy()
    c2w[0, :3, 3] = [1.0, 2.0, 3.0]
    segs = frustum_segments(c2w, np.array([2.0]), 0.5)
    assert segs.shape == (8, 2, 3)
    np.testing.assert_allclose(segs[:4, 0], [[1, 2, 3]] * 4)
    np.testing.assert_allclose(segs[:4, 1, 2], [2.5] * 4)  # 0.5 in front along -Z
    assert np.ptp(segs[:4, 1, 0]) == 2 * np.ptp(segs[:4, 1, 1])  # aspect 2


def test_error_colours_run_green_to_red_and_grey_when_unknown():
    c = error_colors([0.2, 2.5, None])
    assert c[0, 1] == 1.0 and c[0, 0] == 0.0
    assert c[1, 0] == 1.0 and c[1, 1] == 0.0
    assert np.allclose(c[2], 0.6)


def _posed_folder(tmp_path, n_images=5, n_frames=4):
    for k in range(n_images):
        write_image(tmp_path / "scene" / f"v_{k}.png", noise_image(k, (64, 48)))
    frames = [{"file_path": f"v_{k}.png", "transform_matrix": c.tolist()} for k, c in enumerate(ring_cameras(n_frames))]
    (tmp_path / "scene" / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))


def test_standalone_viewer_shows_cameras_and_unposed_images(tmp_path):
    _posed_folder(tmp_path)
    import_poses(tmp_path / "scene" / "transforms.json", None, tmp_path / "poses")
    viewer = PoseViewer(poses_dir=tmp_path / "poses")
    assert "4/5</b> images posed" in viewer.summary.value
    renderer = viewer.view.children[0]
    assert isinstance(renderer, three.Renderer)
    lines = [c for c in renderer.scene.children if isinstance(c, three.LineSegments)][0]
    assert lines.geometry.attributes["position"].array.shape == (4 * 16, 3)
    text = " ".join(getattr(row.children[1], "value", "") for row in viewer.unposed.children[1:])
    assert "v_4.png" in text and "no frame in the poses file" in text
    assert viewer.unposed.children[1].children[0].value[:2] == b"\xff\xd8"  # a JPEG thumbnail


def test_viewer_in_a_project_imports_poses(studio, project, tmp_path):
    _posed_folder(tmp_path, n_images=4, n_frames=4)
    project.upload_images([str(p) for p in sorted((tmp_path / "scene").glob("*.png"))])
    ctx = StudioContext(studio)
    ctx.project = project
    viewer = PoseViewer(context=ctx)
    assert "No poses yet" in viewer.summary.value
    viewer.import_file(str(tmp_path / "scene" / "transforms.json"))
    assert project.state == "PosesEstimated" and ctx.revision == 1
    assert "4/4</b> images posed" in viewer.summary.value


def test_estimation_runs_on_a_thread_and_shows_its_error(studio, project, tmp_path):
    files = [write_image(tmp_path / "up" / f"dark_{k}.png", np.full((48, 64), k, np.uint8)) for k in range(3)]
    project.upload_images([str(f) for f in files])
    ctx = StudioContext(studio)
    ctx.project = project
    viewer = PoseViewer(context=ctx)
    viewer.start_estimation().join(timeout=60)
    assert "blank image" in viewer.notice.value and "nw-error" in viewer.notice.value
    assert not viewer.estimate_button.disabled and viewer.cancel_button.disabled
    assert project.state == "ImagesUploaded"
