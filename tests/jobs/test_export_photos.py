"""A run's training photos as the export's PhotoViews: read from the run's data folder, cameras in its world frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.export import PhotoView
from nerf_widgets.export.raster import rasterize
from nerf_widgets.jobs.export_photos import RunPhotos, field_renderer, run_photos
from tests.jobs.jobs_scene import make_scene


def test_training_photos_of_a_run_see_its_object(tmp_path: Path) -> None:
    import trimesh

    scene = make_scene(tmp_path / "scene", n_views=6, size=32)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {}, "scene": {}, "data_dir": str(scene)}))
    views = run_photos(run, training=True, comparison=False).training
    assert views is not None and len(views) >= 5
    sphere = trimesh.creation.icosphere(4, 0.8)  # the scene's object, in its world frame
    for v in views:
        assert v.image.shape == (32, 32, 4) and v.image.dtype == np.uint8
        covered = rasterize(np.asarray(sphere.vertices), np.asarray(sphere.faces), v).covered
        mask = v.image[..., 3] > 127
        assert (covered & mask).sum() / (covered | mask).sum() > 0.9  # the camera sees the sphere where the photo does


def test_no_photos_when_the_data_folder_is_gone(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {}, "scene": {}, "data_dir": str(tmp_path / "gone")}))
    assert run_photos(run, training=True, comparison=True) == RunPhotos(None, None)
    assert run_photos(tmp_path / "not-a-run", training=True, comparison=True) == RunPhotos(None, None)


def test_comparison_photos_are_the_held_out_ones_when_the_run_has_them(tmp_path: Path) -> None:
    for n, expected in ((9, ["r_0", "r_8"]), (6, [f"r_{k}" for k in range(6)])):  # named by their files
        scene = make_scene(tmp_path / f"scene{n}", n_views=n, size=32)
        run = tmp_path / f"run{n}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"config": {}, "scene": {}, "data_dir": str(scene)}))
        views = run_photos(run, training=False, comparison=True).comparison
        assert views is not None and [v.name for v in views] == expected  # every 8th photo is held out from 8 on
    assert run_photos(tmp_path / "not-a-run", training=False, comparison=True).comparison is None


def test_an_export_that_refines_and_compares_reads_the_photos_once(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A large capture is not loaded twice (nor held twice in memory) for the two uses."""
    import nerf_widgets.engine.data as engine_data

    scene = make_scene(tmp_path / "scene", n_views=9, size=32)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {}, "scene": {}, "data_dir": str(scene)}))
    loads: list[str] = []
    real = engine_data.load_dataset
    monkeypatch.setattr(engine_data, "load_dataset", lambda path, *a, **k: loads.append(str(path)) or real(path, *a, **k))
    both = run_photos(run, training=True, comparison=True)
    assert both.training is not None and both.comparison is not None and len(loads) == 1
    assert [v.name for v in both.comparison] == ["r_0", "r_8"] and len(both.training) == 7
    assert run_photos(run, training=False, comparison=False) == RunPhotos(None, None) and len(loads) == 1


def test_the_field_is_drawn_by_its_own_renderer_from_the_views_camera(tmp_path: Path) -> None:
    seen = []

    class Field:
        def render(self, camera):  # type: ignore[no-untyped-def]
            seen.append(camera)
            return np.zeros((camera.height, camera.width, 3), np.float32)

    view = PhotoView(np.zeros((12, 20, 3), np.uint8), np.eye(4), 30.0, 31.0, 10.0, 6.5, (0.1, 0.0, 0.0, 0.0), "a.jpg")
    draw = field_renderer(Field())
    assert draw is not None and draw(view).shape == (12, 20, 3)
    (cam,) = seen
    assert (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy) == (20, 12, 30.0, 31.0, 10.0, 6.5)
    assert cam.distortion == (0.1, 0.0, 0.0, 0.0) and cam.name == "a.jpg" and np.array_equal(cam.c2w, np.eye(4))
    assert field_renderer(object()) is None  # an analytic field: the export's volume renderer draws it
