"""The photos of a run, handed to the export (engine data -> export views), and the field's renderer.

The export never imports the engine; the jobs layer, which may import both, reads the run's data folder
(``config.json``'s ``data_dir``) and passes the training split (texture refinement) and the held-out split
(the comparison of mesh and field) as ``export.PhotoView`` records, cameras in the world frame the field
is queried in, and draws the field for the comparison with the engine's own renderer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunPhotos", "field_renderer", "photo_views", "run_photos"]

log = logging.getLogger(__name__)


def photo_views(data: Any, split: str = "train") -> list[Any]:
    """``PhotoView`` per frame of ``split`` of an ``engine.Dataset`` (intrinsics scaled to the stored image)."""
    from nerf_widgets.export.views import PhotoView

    views = []
    for k, i in enumerate(data.split(split)):
        cam, image = data.cameras[i], data.images[i]
        sx, sy = image.shape[1] / cam.width, image.shape[0] / cam.height
        views.append(PhotoView(image, cam.c2w, cam.fx * sx, cam.fy * sy, cam.cx * sx, cam.cy * sy,
                               tuple(cam.distortion), cam.name or f"{split} view {k + 1}"))
    return views


def _dataset(run_dir: str | Path, purpose: str) -> Any:
    """The run's dataset, or None (logged with what is lost) when its data folder is gone or unreadable."""
    from nerf_widgets.core.errors import NerfWidgetsError
    from nerf_widgets.engine.checkpoint import read_run_config
    from nerf_widgets.engine.data import load_dataset

    try:
        data_dir = read_run_config(run_dir).get("data_dir")
        if not data_dir or not Path(data_dir).is_dir():
            log.warning("run %s: photos not found (%s); %s", run_dir, data_dir, purpose)
            return None
        return load_dataset(data_dir)
    except NerfWidgetsError as err:
        log.warning("run %s: photos unreadable (%s); %s", run_dir, err, purpose)
        return None


@dataclass(frozen=True)
class RunPhotos:
    """What an export gets from a run's photos: the training split (texture refinement) and the photos the
    mesh and the field are compared on; None where not asked for or where the photos are gone."""

    training: list[Any] | None = None
    comparison: list[Any] | None = None


def run_photos(run_dir: str | Path, *, training: bool, comparison: bool) -> RunPhotos:
    """The run's photos an export asks for, read once (a large capture is not loaded twice): the training split,
    and the held-out (test) split to compare on, else the training photos (a run trained on every photo).
    Photos that are gone or unreadable give None (logged): the export then bakes only / is not compared."""
    if not (training or comparison):
        return RunPhotos()
    lost = " and ".join(what for what, asked in (("the texture is baked from the field only", training),
                                                   ("the export is not compared with the photos", comparison)) if asked)
    data = _dataset(run_dir, lost)
    if data is None:
        return RunPhotos()
    shown = photo_views(data, "test" if data.splits.get("test") else "train") if comparison else None
    return RunPhotos(photo_views(data) if training else None, shown)


def field_layer(field: Any) -> Any:
    """The field's ``tracer`` (rays with a box left out: the export's background shell) when it has a background
    to draw, else None."""
    return field.tracer if getattr(field, "has_background", False) else None


def field_renderer(field: Any) -> Any:
    """A ``PhotoView -> [H,W,3]`` renderer through the field's own ``render`` (the engine's sampler, on
    white), or None when the field has none (the export then uses its plain volume renderer)."""
    render = getattr(field, "render", None)
    if render is None:
        return None
    from nerf_widgets.engine.rays import Camera

    def draw(view: Any) -> Any:
        return render(Camera(view.c2w, view.fx, view.fy, view.cx, view.cy, view.width, view.height,
                             tuple(view.distortion), view.name))

    return draw
