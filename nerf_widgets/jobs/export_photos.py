"""The training photos of a run, handed to the export for texture refinement (engine data -> export views).

The export never imports the engine; the jobs layer, which may import both, reads the run's data folder
(``config.json``'s ``data_dir``) and passes the training split as ``export.PhotoView`` records, cameras in
the world frame the field is queried in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["photo_views", "training_photos"]

log = logging.getLogger(__name__)


def photo_views(data: Any, split: str = "train") -> list[Any]:
    """``PhotoView`` per frame of ``split`` of an ``engine.Dataset`` (intrinsics scaled to the stored image)."""
    from nerf_widgets.export.views import PhotoView

    views = []
    for i in data.split(split):
        cam, image = data.cameras[i], data.images[i]
        sx, sy = image.shape[1] / cam.width, image.shape[0] / cam.height
        views.append(PhotoView(image, cam.c2w, cam.fx * sx, cam.fy * sy, cam.cx * sx, cam.cy * sy,
                               tuple(cam.distortion)))
    return views


def training_photos(run_dir: str | Path) -> list[Any] | None:
    """The run's training photos, or None (logged) when its data folder is gone: the export then bakes only."""
    from nerf_widgets.core.errors import NerfWidgetsError
    from nerf_widgets.engine.checkpoint import read_run_config
    from nerf_widgets.engine.data import load_dataset

    try:
        data_dir = read_run_config(run_dir).get("data_dir")
        if not data_dir or not Path(data_dir).is_dir():
            log.warning("run %s: training photos not found (%s); the texture is baked from the field only", run_dir,
                        data_dir)
            return None
        return photo_views(load_dataset(data_dir))
    except NerfWidgetsError as err:
        log.warning("run %s: training photos unreadable (%s); the texture is baked from the field only", run_dir, err)
        return None
