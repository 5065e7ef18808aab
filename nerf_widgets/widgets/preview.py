"""``LivePreview``: the model's render of a held-out view beside its ground truth, refreshed at each
evaluation, and an orbit control that renders a chosen view of the latest checkpoint on demand.

Orbit renders run on a background thread (``Job.render_view``: cached model, <= 256 px), so a click
never blocks the kernel.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nerf_widgets.jobs.bus import Batch
from nerf_widgets.widgets.common import Notice, error_message, guarded
from nerf_widgets.widgets.job_watch import JobWatch

if TYPE_CHECKING:
    from nerf_widgets.jobs.handle import Job

__all__ = ["LivePreview"]

_IMG = {"width": "200px", "height": "200px", "object_fit": "contain"}


def _image(label: str) -> tuple[w.Image, w.VBox]:
    img = w.Image(format="png", layout=w.Layout(**_IMG, border="1px solid #ddd"))
    return img, w.VBox([w.HTML(f"<small>{label}</small>"), img])


class LivePreview(w.VBox):
    """``LivePreview(job)`` standalone, or fed by a ``TrainingPanel`` through ``apply(view)``."""

    def __init__(self, job: Job | None = None, *, watch: bool = True) -> None:
        self.notice = Notice()
        self.caption = w.HTML("<i>No evaluation yet.</i>")
        self.rendered, rendered_box = _image("model render (held-out view)")
        self.truth, truth_box = _image("ground truth")
        self.orbit_image, orbit_box = _image("orbit view (latest checkpoint)")
        self.azimuth = w.IntSlider(30, min=0, max=359, step=5, description="azimuth")
        self.elevation = w.IntSlider(20, min=-80, max=80, step=5, description="elevation")
        self.size = w.Dropdown(options=[64, 128, 192, 256], value=128, description="size px")
        self.render_button = w.Button(description="Render view", icon="camera")
        self.render_button.add_class("nw-render-view")
        self.render_button.on_click(guarded(self.notice, lambda _b: self.render_view()))
        self.job: Job | None = None
        self._shown_step: int | None = None
        self._render_thread: threading.Thread | None = None
        self._watch = JobWatch(lambda view, _b: self.apply(view), name="preview") if watch else None
        controls = w.VBox([self.azimuth, self.elevation, self.size, self.render_button])
        super().__init__([self.caption, w.HBox([rendered_box, truth_box, orbit_box, controls]), self.notice])
        self.add_class("nw-live-preview")
        self.set_job(job)

    def set_job(self, job: Job | None) -> None:
        self.job = job
        self._shown_step = None
        self.rendered.value = self.truth.value = self.orbit_image.value = b""
        self.caption.value = "<i>No evaluation yet.</i>"
        if self._watch is not None:
            self._watch.attach(job)

    def apply(self, view: dict[str, Any], _batch: Batch | None = None) -> None:
        """Show the latest evaluation images of ``view`` (a job view from the bus)."""
        preview = view.get("preview")
        if not preview or preview.get("step") == self._shown_step:
            return
        self._shown_step = preview["step"]
        with self.hold_sync():
            self.rendered.value = preview["rendered_png"]
            self.truth.value = preview["truth_png"]
            self.caption.value = f"Held-out view at step {int(preview['step'])}"

    def render_view(self, *, wait: bool = False) -> None:
        """Render the orbit position on a background thread (one at a time)."""
        if self.job is None:
            self.notice.error("Start or choose a training job first.")
            return
        if self._render_thread is not None and self._render_thread.is_alive():
            return
        job, az, el, size = self.job, self.azimuth.value, self.elevation.value, self.size.value
        self.render_button.disabled = True
        self._render_thread = threading.Thread(target=self._render, args=(job, az, el, size), daemon=True)
        self._render_thread.start()
        if wait:
            self._render_thread.join()

    def _render(self, job: Job, az: float, el: float, size: int) -> None:
        try:
            self.orbit_image.value = job.render_view(az, el, size)
            self.notice.clear()
        except Exception as err:  # shown inline; the kernel stays usable
            self.notice.error(error_message(err))
        finally:
            self.render_button.disabled = False

    def close(self) -> None:
        if self._watch is not None:
            self._watch.detach()
        super().close()
