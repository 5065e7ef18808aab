"""PoseViewer's region box: drawn over the frusta, sliders store it through project.set_region, reset restores it."""

from __future__ import annotations

import numpy as np
import pythreejs as three

from nerf_widgets.core.region import Region
from nerf_widgets.widgets.panel import StudioContext
from nerf_widgets.widgets.pose_viewer import PoseViewer
from nerf_widgets.widgets.region_box import BOX_COLOR, box_segments
from tests.poses.test_project_region import _posed


def _viewer(studio, project) -> PoseViewer:
    ctx = StudioContext(studio)
    ctx.project = project
    return PoseViewer(context=ctx)


def _box(viewer: PoseViewer) -> three.LineSegments:
    renderer = viewer.view.children[0]
    return [c for c in renderer.scene.children
            if isinstance(c, three.LineSegments) and c.material.color == BOX_COLOR][0]


def test_box_segments_are_the_twelve_edges() -> None:
    region = Region.from_dict({"center": [1, 2, 3], "size": [2, 4, 6], "yaw_deg": 0})
    segs = box_segments(region).reshape(12, 2, 3)
    lengths = sorted(np.round(np.linalg.norm(segs[:, 1] - segs[:, 0], axis=1), 6))
    assert lengths == [2.0] * 4 + [4.0] * 4 + [6.0] * 4
    assert np.allclose(segs.reshape(-1, 3).min(0), [0, 0, 0]) and np.allclose(segs.reshape(-1, 3).max(0), [2, 4, 6])


def test_viewer_draws_the_proposed_box_and_a_slider_stores_it(studio, project, tmp_path) -> None:
    _posed(project, tmp_path)
    viewer = _viewer(studio, project)
    proposed = project.region()
    assert viewer.region_editor.layout.display is None
    assert np.allclose(_box(viewer).geometry.attributes["position"].array, box_segments(proposed))
    assert np.isclose(viewer.region_editor.size[0].value, proposed.size[0], atol=0.01)

    viewer.region_editor.size[0].value = 1.23  # what a slider release does
    stored = project.region()
    assert stored.source == "set" and np.isclose(stored.size[0], 1.23)
    assert project.history[-1].transition == "set_region"
    assert np.allclose(_box(viewer).geometry.attributes["position"].array, box_segments(stored))

    viewer.region_editor.yaw.value = 45.0
    assert abs(project.region().yaw_deg - 45.0) < 1e-6

    viewer.region_editor.reset_button.click()
    assert project.region().source == "proposed"
    assert np.isclose(viewer.region_editor.size[0].value, proposed.size[0], atol=0.01)
    assert project.history[-1].transition == "reset_region"


def test_a_box_no_camera_sees_is_refused_and_the_sliders_go_back(studio, project, tmp_path) -> None:
    _posed(project, tmp_path)
    viewer = _viewer(studio, project)
    editor = viewer.region_editor
    for s, v in zip(editor.size, (0.05, 0.05, 0.05), strict=True):
        s.value = v
    before = project.region()
    editor.center[2].value = 3.9  # high above the ring of cameras, out of every view
    assert "seen by none" in viewer.notice.value
    assert np.allclose(project.region().center, before.center)
    assert np.isclose(editor.center[2].value, before.center[2], atol=0.01)


def test_without_poses_there_is_no_box(studio, project) -> None:
    viewer = _viewer(studio, project)
    assert viewer.region_editor.layout.display == "none" and viewer.view.children == ()
