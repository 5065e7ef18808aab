"""ExportPanel: format and options, progress by stage, cancel, a download link and a MeshViewer of the result.

It exports the open project's trained model with one ``project.export`` call (a job: recorded, resource
checked, under the project lock) and follows that job by polling its status.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets

from nerf_widgets.core.errors import StateConflictError
from nerf_widgets.widgets.common import Notice, error_message, esc, guarded
from nerf_widgets.widgets.download import download_html
from nerf_widgets.widgets.mesh_viewer import VIEWABLE, MeshViewer
from nerf_widgets.widgets.panel import PanelMixin

__all__ = ["ExportPanel"]

POLL_S = 0.25  # how often project mode re-reads the export job's status


class ExportPanel(PanelMixin, ipywidgets.VBox):
    """Choose a format and options, export, watch the stages, download and look at the result."""

    project: Any = None
    job: Any = None

    def __init__(self, *, context: Any = None) -> None:
        from nerf_widgets.studio.catalog import export_choices

        choices = export_choices()
        self._multi_file = choices.multi_file
        self.format = ipywidgets.Dropdown(options=choices.formats, value="glb", description="Format")
        self.resolution = ipywidgets.BoundedIntText(256, min=32, max=512, description="Grid")
        self.faces = ipywidgets.BoundedIntText(200_000, min=500, max=5_000_000, step=10_000, description="Faces")
        self.texture = ipywidgets.Dropdown(options=[0, 512, 1024, 2048, 4096], value=2048, description="Texture")
        self.texture_format = ipywidgets.Dropdown(options=choices.texture_formats, value="auto", description="Image")
        self.compress = ipywidgets.Dropdown(options=choices.compressions, value="none", description="Compress")
        self.export_button = ipywidgets.Button(description="Export", button_style="primary", icon="download")
        self.cancel_button = ipywidgets.Button(description="Cancel", disabled=True)
        self.progress = ipywidgets.FloatProgress(0.0, min=0.0, max=1.0, description="")
        self.stage = ipywidgets.HTML("")
        self.download = ipywidgets.HTML("")
        self.notice = Notice()
        self.viewer = MeshViewer(width=560, height=400)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.export_button.on_click(guarded(self.notice, lambda _b: self.start()))
        self.cancel_button.on_click(lambda _b: self._stop.set())
        options = ipywidgets.VBox([ipywidgets.HBox([self.format, self.compress]),
                                   ipywidgets.HBox([self.resolution, self.faces]),
                                   ipywidgets.HBox([self.texture, self.texture_format])])
        controls = ipywidgets.HBox([self.export_button, self.cancel_button, self.progress, self.stage])
        super().__init__([options, controls, self.notice, self.download, self.viewer])
        self.add_class("nw-export-panel")
        self.bind(context)

    def options(self) -> dict[str, Any]:
        """The export options as chosen in the widgets (multi-file formats are always zipped for download)."""
        return {"resolution": self.resolution.value, "faces": self.faces.value, "texture": self.texture.value,
                "texture_format": self.texture_format.value, "compress": self.compress.value,
                "zip": self.format.value in self._multi_file}

    def start(self) -> threading.Thread:
        """Queue ``project.export`` with the chosen options; returns the thread following the job."""
        if self._thread is not None and self._thread.is_alive():
            raise StateConflictError("an export is already running")
        if self.project is None:
            raise StateConflictError("nothing to export yet: open a project and train a model first")
        return self._start_job(self.project)

    def set_project(self, project: Any) -> None:
        self.project = project

    def _start_job(self, project: Any) -> threading.Thread:
        """Project mode: ``project.export(...)`` queues the job; a thread follows it until it ends."""
        self.job = project.export(self.format.value, **self.options())
        self._stop.clear()
        self.download.value, self.progress.value, self.progress.bar_style = "", 0.0, ""
        self._busy(True)
        self._thread = threading.Thread(target=self._follow, args=(self.job,), name="nw-export-job", daemon=True)
        self._thread.start()
        return self._thread

    def _follow(self, job: Any) -> None:
        try:
            while not job.finished:
                if self._stop.is_set() and not job.record().state == "cancelled":
                    job.cancel()
                status = job.status
                self.progress.value = status["fraction"]
                self.stage.value = f"{esc(status['stage'] or status['state'])} {status['stage_fraction']:.0%}"
                time.sleep(POLL_S)
            row = job.wait()
            if row.state != "succeeded":
                raise StateConflictError(f"export {row.state}: {row.error or ''}")
            self._job_finished(job, row)
            self.touch()
        except Exception as err:  # noqa: BLE001 - shown inline, never raised into the cell
            self.progress.bar_style = "danger"
            self.notice.error(error_message(err))
        finally:
            self._busy(False)

    def _job_finished(self, job: Any, row: Any) -> None:
        result, path = row.progress.get("result", {}), job.path
        self.progress.value, self.progress.bar_style = 1.0, "success"
        self.stage.value = f"done in {sum(result.get('seconds', {}).values()):.1f} s"
        self.download.value = download_html(path) + (
            f" &middot; {result.get('vertices', 0):,} vertices, {result.get('faces', 0):,} faces")
        main = path.parent / row.params["file_name"]  # beside the zip of a multi-file format
        if main.suffix.lower() in VIEWABLE and main.is_file():
            self.viewer.show(main)

    def _busy(self, busy: bool) -> None:
        self.export_button.disabled, self.cancel_button.disabled = busy, not busy
