"""A run's training photos as the export's PhotoViews: read from the run's data folder, cameras in its world frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nerf_widgets.export.raster import rasterize
from nerf_widgets.jobs.export_photos import training_photos
from tests.jobs.jobs_scene import make_scene


def test_training_photos_of_a_run_see_its_object(tmp_path: Path) -> None:
    import trimesh

    scene = make_scene(tmp_path / "scene", n_views=6, size=32)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {}, "scene": {}, "data_dir": str(scene)}))
    views = training_photos(run)
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
    assert training_photos(run) is None
    assert training_photos(tmp_path / "not-a-run") is None
