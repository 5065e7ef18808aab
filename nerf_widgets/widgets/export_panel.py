"""ExportPanel: format and options, progress by stage, cancel, a download link and a MeshViewer of the result.

Size: "Size" fills faces, texture and refinement minutes from a preset named for its use (web, game, archive);
"Normal map" (auto: as the size says, which is a map for "game"; with; without) bakes the full mesh's detail onto
the decimated one for lit viewers and engines; "Shine" (auto: a refined glb/gltf, except for "web"; with;
without) fits the colour that changes with the view to the photos, which the MeshViewer draws;
"Refine" is the minutes the texture is fitted to the training photos after the bake (0 keeps the bake; it
applies to textured formats; left at the preset's or default value it is skipped when the run has no photos,
any other value asks for them).

Region controls: "Region" (auto: the box set in the PoseViewer, else the whole field; yes: the region, set or
proposed; no: the whole field), "Floor" (as the region says, cut, kept) and "Largest part only".

It exports the open project's trained model with one ``project.export`` call (a job: recorded, resource
checked, under the project lock) and follows that job on its event bus (``JobWatch``); an export of the open
project started elsewhere (a cell, another kernel) is announced by the studio feed and followed the same way.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import ipywidgets

from nerf_widgets.core.errors import StateConflictError
from nerf_widgets.widgets.common import Notice, error_message, esc, guarded
from nerf_widgets.widgets.download import download_html
from nerf_widgets.widgets.job_watch import JobWatch
from nerf_widgets.widgets.mesh_viewer import VIEWABLE, MeshViewer
from nerf_widgets.widgets.panel import PanelMixin, about_project

if TYPE_CHECKING:
    from nerf_widgets.jobs.bus import Event

__all__ = ["ExportPanel"]

# labels -> what project.export takes (a Dropdown reads a None value as "nothing selected", hence the names)
REGION_CHOICES = [("auto (the box set in Poses)", "auto"), ("yes (set or proposed)", "yes"), ("no (whole field)", "no")]
FLOOR_CHOICES = [("as the region says", "region"), ("cut", "cut"), ("keep", "keep")]
_REGION = {"auto": "auto", "yes": True, "no": None}
_FLOOR = {"region": None, "cut": True, "keep": False}
# the scene beyond the exported box (a room's walls, what is far away) as a shell around the cameras
BACKGROUND_CHOICES = [("auto (a real capture, whole)", "auto"), ("with", "with"), ("without", "without")]
_CHOICE = {"auto": None, "with": True, "without": False}  # the Background and Normal map dropdowns
NORMAL_MAP_CHOICES = [("auto (as the size says)", "auto"), ("with", "with"), ("without", "without")]
SHINE_CHOICES = [("auto (glb/gltf, refined)", "auto"), ("with", "with"), ("without", "without")]
SIZE_FIELDS = ("faces", "texture", "refine_minutes")  # what a preset fills in the panel


class ExportPanel(PanelMixin, ipywidgets.VBox):
    """Choose a format and options, export, watch the stages, download and look at the result."""

    project: Any = None
    job: Any = None

    def __init__(self, *, context: Any = None) -> None:
        from nerf_widgets.studio.catalog import export_choices

        choices = export_choices()
        self._multi_file, self._textured, self._presets = choices.multi_file, choices.textured, choices.presets
        self._default_refine = choices.default_refine_minutes
        self.size = ipywidgets.Dropdown(options=[("custom", "custom"), *[(f"{n} ({v['faces'] // 1000}k faces)", n)
                                                                          for n, v in choices.presets.items()]],
                                        value="custom", description="Size")
        self.format = ipywidgets.Dropdown(options=choices.formats, value="glb", description="Format")
        sizes = choices.defaults
        self.resolution = ipywidgets.BoundedIntText(sizes["resolution"], min=32, max=512, description="Grid")
        self.faces = ipywidgets.BoundedIntText(sizes["faces"], min=500, max=5_000_000, step=10_000, description="Faces")
        self.texture = ipywidgets.Dropdown(options=[0, 512, 1024, 2048, 4096], value=sizes["texture"],
                                           description="Texture")
        self.texture_format = ipywidgets.Dropdown(options=choices.texture_formats, value="auto", description="Image")
        self.compress = ipywidgets.Dropdown(options=choices.compressions, value="none", description="Compress")
        self.region = ipywidgets.Dropdown(options=REGION_CHOICES, value="auto", description="Region")
        self.floor = ipywidgets.Dropdown(options=FLOOR_CHOICES, value="region", description="Floor")
        self.keep_largest = ipywidgets.Checkbox(False, description="Largest part only", indent=False)
        self.watertight = ipywidgets.Checkbox(False, description="Watertight (to print)", indent=False)
        self.background = ipywidgets.Dropdown(options=BACKGROUND_CHOICES, value="auto", description="Background")
        self.normal_map = ipywidgets.Dropdown(options=NORMAL_MAP_CHOICES, value="auto", description="Normal map")
        self.view_dependence = ipywidgets.Dropdown(options=SHINE_CHOICES, value="auto", description="Shine")
        self._view_term_formats = choices.view_term
        self.refine = ipywidgets.BoundedFloatText(choices.default_refine_minutes, min=0.0, max=60.0, step=0.5,
                                                  description="Refine (min)")
        self.region.observe(lambda _c: self._region_changed(), names="value")
        self.size.observe(lambda _c: self._size_changed(), names="value")
        self._applying = False
        for field in (self.faces, self.texture, self.refine, self.format, self.compress):
            field.observe(lambda _c: self._sizes_edited(), names="value")
        self.export_button = ipywidgets.Button(description="Export", button_style="primary", icon="download")
        self.cancel_button = ipywidgets.Button(description="Cancel", disabled=True)
        self.progress = ipywidgets.FloatProgress(0.0, min=0.0, max=1.0, description="")
        self.stage = ipywidgets.HTML("")
        self.stage.add_class("nw-export-stage")
        self.download = ipywidgets.HTML("")
        self.notice = Notice()
        self.viewer = MeshViewer(width=560, height=400)
        self._watch = JobWatch(self._on_job_view, name="export-panel")
        self._job_done = threading.Event()
        self._finished_job: str | None = None
        self.export_button.on_click(guarded(self.notice, lambda _b: self.start()))
        self.cancel_button.on_click(guarded(self.notice, lambda _b: self._cancel()))
        options = ipywidgets.VBox([ipywidgets.HBox([self.format, self.compress]),
                                   ipywidgets.HBox([self.resolution, self.faces]),
                                   ipywidgets.HBox([self.size, self.refine]),
                                   ipywidgets.HBox([self.texture, self.texture_format]),
                                   ipywidgets.HBox([self.background, self.normal_map, self.view_dependence]),
                                   ipywidgets.HBox([self.region, self.floor, self.keep_largest, self.watertight])])
        controls = ipywidgets.HBox([self.export_button, self.cancel_button, self.progress, self.stage])
        super().__init__([options, controls, self.notice, self.download, self.viewer])
        self.add_class("nw-export-panel")
        self.bind(context)

    def options(self) -> dict[str, Any]:
        """The export options as chosen in the widgets (multi-file formats are always zipped for download)."""
        return {"resolution": self.resolution.value, **self._sizes(),
                "texture_format": self.texture_format.value, "compress": self.compress.value,
                "zip": self.format.value in self._multi_file, "region": _REGION[self.region.value],
                "remove_floor": None if self.region.value == "no" else _FLOOR[self.floor.value],
                "keep_largest": self.keep_largest.value, "watertight": self.watertight.value,
                "background": _CHOICE[self.background.value],
                "normal_map": _CHOICE[self.normal_map.value] if self._is_textured() else None,
                "view_dependence": _CHOICE[self.view_dependence.value] if self._carries_view_term() else None,
                "preset": None if self.size.value == "custom" else self.size.value}  # recorded with the export

    def _is_textured(self) -> bool:
        return self.format.value in self._textured and self.texture.value > 0

    def _carries_view_term(self) -> bool:
        """A glb/gltf, uncompressed, refined: where a view-dependent colour can be fitted and kept."""
        return (self._is_textured() and self.format.value in self._view_term_formats and self.compress.value == "none"
                and self.refine.value > 0)

    def _sizes(self) -> dict[str, Any]:
        refine: float | None = float(self.refine.value) if self._is_textured() else 0.0
        preset = self._presets.get(self.size.value)
        if refine == (preset["refine_minutes"] if preset else self._default_refine):
            refine = None  # the preset's or default minutes: refined when the run has its photos, else baked only
        return {"faces": self.faces.value, "texture": self.texture.value, "refine_minutes": refine}

    def _region_changed(self) -> None:
        self.floor.disabled = self.region.value == "no"  # no region, no floor to cut

    def _size_changed(self) -> None:
        preset = self._presets.get(self.size.value)
        if preset is not None:
            self._applying = True
            try:
                self.faces.value, self.texture.value = preset["faces"], preset["texture"]
                self.refine.value = preset["refine_minutes"]
            finally:
                self._applying = False
            self._sizes_edited()

    def _sizes_edited(self) -> None:
        """A size edited away from the chosen preset's makes it "custom"; no texture, nothing to refine."""
        self.refine.disabled = self.normal_map.disabled = not self._is_textured()
        self.view_dependence.disabled = not self._carries_view_term()
        preset = self._presets.get(self.size.value)
        if self._applying or preset is None:
            return
        shown = {"faces": self.faces.value, "texture": self.texture.value, "refine_minutes": self.refine.value}
        if any(float(shown[k]) != float(preset[k]) for k in SIZE_FIELDS if k != "refine_minutes" or self._is_textured()):
            self.size.value = "custom"

    def start(self) -> threading.Event:
        """Queue ``project.export`` with the chosen options; returns an event set when the job has ended."""
        if self.export_button.disabled:
            raise StateConflictError("an export is already running")
        if self.project is None:
            raise StateConflictError("nothing to export yet: open a project and train a model first")
        return self._start_job(self.project)

    def set_project(self, project: Any) -> None:
        self.project = project

    def _start_job(self, project: Any) -> threading.Event:
        """Project mode: ``project.export(...)`` queues the job; the panel follows it on its event bus."""
        self._follow(project.export(self.format.value, **self.options()))
        return self._job_done

    def on_feed(self, events: list[Event] | None) -> None:
        """An export of this project started elsewhere (a cell, another kernel): follow it here too."""
        jobs = about_project(events or [], self.context, ("job",))
        self._watch.catch_up(jobs)  # an export running in another kernel: its progress from the store
        for event in jobs:
            d = event.data
            if d["type"] == "export" and d["new"] and (
                    self.job is None or self.job.id != d["job_id"]):
                self._follow(export_job_handle(self.project.job(d["job_id"])))

    def _follow(self, job: Any) -> None:
        self.job, self._finished_job = job, None
        self._job_done.clear()
        self.notice.clear()
        self.download.value, self.progress.value, self.progress.bar_style = "", 0.0, ""
        self._busy(True)
        self._watch.attach(job)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the followed export job has ended and its result is shown (tests, scripts)."""
        return self._job_done.wait(timeout)

    def _on_job_view(self, view: dict[str, Any], _batch: Any) -> None:
        job, prog, state = self.job, view.get("progress", {}), view.get("job", {}).get("state")
        if job is None or state is None or self._finished_job == job.id:
            return
        if state not in ("succeeded", "failed", "cancelled"):
            self.progress.value = float(prog.get("fraction") or 0.0)
            self.stage.value = f"{esc(prog.get('stage') or state)} {float(prog.get('stage_fraction') or 0.0):.0%}"
            return
        self._finished_job = job.id
        try:
            row = job.record()
            if row.state != "succeeded":
                raise StateConflictError(f"export {row.state}: {row.error or ''}")
            self._job_finished(job, row)
            self.touch()
        except Exception as err:  # noqa: BLE001 - shown inline, never raised into the cell
            self.progress.bar_style = "danger"
            self.notice.error(error_message(err))
        finally:
            self._busy(False)
            self._job_done.set()

    def close(self) -> None:
        """Unregister from the followed job's bus, then close the widgets."""
        self._watch.detach()
        super().close()

    def _cancel(self) -> None:
        if self.job is not None and self._finished_job != self.job.id:
            self.job.cancel()

    def _job_finished(self, job: Any, row: Any) -> None:
        result, path = row.progress.get("result", {}), job.path
        self.progress.value, self.progress.bar_style = 1.0, "success"
        self.stage.value = f"done in {sum(result.get('seconds', {}).values()):.1f} s"
        self.download.value = download_html(path) + (
            f" &middot; {result.get('vertices', 0):,} vertices, {result.get('faces', 0):,} faces") + _scores(result)
        main = path.parent / row.params["file_name"]  # beside the zip of a multi-file format
        if main.suffix.lower() in VIEWABLE and main.is_file():
            self.viewer.show(main)

    def _busy(self, busy: bool) -> None:
        self.export_button.disabled, self.cancel_button.disabled = busy, not busy


def _scores(result: dict[str, Any]) -> str:
    """`` · mesh 26.29 dB, field 31.29 dB on 3 photos`` when the export compared them (see the MeshViewer)."""
    c = result.get("comparison") or {}
    if c.get("mesh_psnr") is None or c.get("field_psnr") is None:
        return ""
    return (f" &middot; mesh {c['mesh_psnr']:.2f} dB, field {c['field_psnr']:.2f} dB on {len(c.get('views', []))} "
            "photos")


def export_job_handle(job: Any) -> Any:
    """The ``ExportJob`` handle (status, path) of a job of type export."""
    from nerf_widgets.jobs.export_job import ExportJob

    return ExportJob(job.runner, job.id, job.record().params["export_id"])
