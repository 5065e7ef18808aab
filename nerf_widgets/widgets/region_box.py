"""``RegionEditor``: the region of interest drawn as a box in the pose view, moved/scaled/turned with sliders.

Each slider release is one ``project.set_region(...)`` call (validated there; a refused box shows the message
and the sliders go back to the stored one); "Reset to proposed" is ``project.reset_region()``. Sliders rather
than a pythreejs ``TransformControls``: the latter needs pointer capture that does not work in every supported
front end, sliders do, and they give exact numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np
from numpy.typing import NDArray

from nerf_widgets.core.region import Region
from nerf_widgets.widgets.common import Notice, error_message

if TYPE_CHECKING:
    from nerf_widgets.studio import Project

__all__ = ["BOX_COLOR", "RegionEditor", "box_segments"]

BOX_COLOR = "#ffd600"  # bright yellow: stands out from the error-coloured frusta and the points
_EDGES = [(i, i ^ bit) for i in range(8) for bit in (1, 2, 4) if not i & bit]


def box_segments(region: Region) -> NDArray[np.float32]:
    """The 12 edges of the box as line segments [24, 3] (pairs of points) in world coordinates."""
    corners = region.corners()
    return np.array([corners[k] for edge in _EDGES for k in edge], np.float32)


class RegionEditor(w.VBox):
    """Sliders for centre, size and turn about the up axis, the floor switch and a reset button."""

    def __init__(self, notice: Notice, radius: float = 4.0) -> None:
        self.notice = notice
        self.project: Project | None = None
        self._syncing = False
        self.line: Any = None  # the pythreejs LineSegments, made by ``scene_object``
        span = float(radius)

        def slider(name: str, lo: float, hi: float, step: float) -> w.FloatSlider:
            s = w.FloatSlider(value=0.0, min=lo, max=hi, step=step, description=name, continuous_update=False,
                              readout_format=".2f", layout=w.Layout(width="300px"))
            s.observe(self._on_change, names="value")
            return s

        self.center = [slider(f"center {a}", -span, span, 0.01) for a in "xyz"]
        self.size = [slider(f"size {a}", 0.01, 2 * span, 0.01) for a in "xyz"]
        self.yaw = slider("turn (deg)", -180.0, 180.0, 1.0)
        self.floor_cut = w.Checkbox(value=False, description="cut the floor")
        self.floor_cut.observe(self._on_change, names="value")
        self.reset_button = w.Button(description="Reset to proposed", icon="undo", layout=w.Layout(width="180px"))
        self.reset_button.on_click(lambda _b: self.reset())
        self.caption = w.HTML("<b>Region of interest</b> (yellow box): what training and export keep")
        super().__init__([self.caption, w.HBox([w.VBox(self.center), w.VBox(self.size)]),
                          w.HBox([self.yaw, self.floor_cut, self.reset_button])])
        self.add_class("nw-region-editor")

    # --- the 3D object ------------------------------------------------------------------------
    def scene_object(self, region: Region) -> Any:
        """A new LineSegments for ``region`` (kept in ``self.line`` so slider moves update it)."""
        import pythreejs as three

        geom = three.BufferGeometry(attributes={"position": three.BufferAttribute(box_segments(region),
                                                                                   normalized=False)})
        self.line = three.LineSegments(geom, three.LineBasicMaterial(color=BOX_COLOR, linewidth=2))
        return self.line

    # --- binding ------------------------------------------------------------------------------
    def show_region(self, project: Project | None, region: Region) -> None:
        """Put ``region`` into the sliders (without storing it) and into the box."""
        self.project = project
        self._syncing = True
        try:
            for s, v in zip(self.center + self.size, [*region.center, *region.size], strict=True):
                s.value = float(np.clip(v, s.min, s.max))
            self.yaw.value = float(region.yaw_deg)
            self.floor_cut.value = bool(region.floor_cut)
        finally:
            self._syncing = False
        self.caption.value = (f"<b>Region of interest</b> (yellow box, {region.source}): what training and export "
                              "keep")
        if self.line is not None:
            self.line.geometry.attributes["position"].array = box_segments(region)

    def values(self) -> dict[str, Any]:
        """The sliders as ``set_region`` keywords."""
        return {"center": [s.value for s in self.center], "size": [s.value for s in self.size],
                "yaw_deg": self.yaw.value, "floor_cut": self.floor_cut.value}

    # --- actions (each one Project call) ------------------------------------------------------
    def _on_change(self, _change: Any) -> None:
        if self._syncing or self.project is None:
            return
        try:
            region = self.project.set_region(**self.values())
            self.notice.clear()
        except Exception as err:  # noqa: BLE001 - shown inline; the sliders go back to the stored box
            self.notice.error(error_message(err))
            region = self.project.region()
        self.show_region(self.project, region)

    def reset(self) -> None:
        """``project.reset_region()`` and show the proposal again."""
        if self.project is None:
            return
        try:
            self.show_region(self.project, self.project.reset_region())
            self.notice.info("Region reset to the proposed box.")
        except Exception as err:  # noqa: BLE001
            self.notice.error(error_message(err))
