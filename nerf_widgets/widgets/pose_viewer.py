"""``PoseViewer``: estimate or import camera poses and inspect them in 3D (pythreejs).

Shows camera frusta coloured by each image's mean reprojection error (green = low, red = high),
the sparse point cloud, in a project the region of interest (a yellow box with sliders, ``RegionEditor``),
a summary of the run (matcher, mapper, points, track length) and the images that got no pose, with their thumbnails and the reason. As a ``StudioApp`` tab it follows
the open project (``PoseViewer(context=ctx)``); standalone, ``PoseViewer(poses_dir=...)`` shows a
folder written by ``nerf-widgets poses``. Estimation runs on a background thread and can be cancelled.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np
from numpy.typing import NDArray

from nerf_widgets.widgets.common import Notice, error_message, esc, guarded
from nerf_widgets.widgets.job_watch import ACTIVE_STATES, JobWatch
from nerf_widgets.widgets.panel import PanelMixin, StudioContext, about_project
from nerf_widgets.widgets.region_box import RegionEditor

if TYPE_CHECKING:
    from nerf_widgets.jobs.bus import Event
    from nerf_widgets.studio import Project
    from nerf_widgets.studio.catalog import PoseFolder, PoseProgress, PoseReport

__all__ = ["PoseViewer", "error_colors", "frustum_segments"]

MAX_POINTS = 60_000  # shown; the rest are subsampled away to keep the widget light
_ERR_GOOD, _ERR_BAD = 0.5, 2.0  # px: colour scale ends


def frustum_segments(c2w: NDArray[np.float64], aspect: NDArray[np.float64], size: float) -> NDArray[np.float32]:
    """Line segments [N*8, 2, 3] drawing a pyramid per camera (OpenGL c2w [N,4,4], aspect w/h [N], depth ``size``)."""
    half_h = 0.5 * size * np.ones(len(c2w))
    half_w = half_h * aspect
    corners_cam = np.stack([np.stack([sx * half_w, sy * half_h, -size * np.ones(len(c2w))], 1)
                            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))], 1)  # [N,4,3]
    corners = np.einsum("nij,nkj->nki", c2w[:, :3, :3], corners_cam) + c2w[:, None, :3, 3]
    apex = np.repeat(c2w[:, None, :3, 3], 4, axis=1)
    sides = np.stack([apex, corners], 2)  # [N,4,2,3]
    rim = np.stack([corners, np.roll(corners, -1, axis=1)], 2)
    return np.concatenate([sides, rim], 1).reshape(-1, 2, 3).astype(np.float32)


def error_colors(errors: list[float | None]) -> NDArray[np.float32]:
    """RGB [N,3] in 0..1: green at <= 0.5 px through yellow to red at >= 2 px; grey when unknown (imports)."""
    out = np.full((len(errors), 3), 0.6, np.float32)
    for i, err in enumerate(errors):
        if err is not None:
            t = float(np.clip((err - _ERR_GOOD) / (_ERR_BAD - _ERR_GOOD), 0.0, 1.0))
            out[i] = (min(1.0, 2 * t), min(1.0, 2 * (1 - t)), 0.1)
    return out


def _scene_children(scene: PoseFolder) -> tuple[list[Any], float]:
    """pythreejs objects for the cameras and points of a pose folder, and the scene radius."""
    import pythreejs as three

    c2w = scene.c2w
    radius = float(np.linalg.norm(c2w[:, :3, 3], axis=1).max()) if len(c2w) else 1.0
    segs = frustum_segments(c2w, scene.aspect, 0.08 * radius)
    colors = np.repeat(error_colors(scene.errors), 16, axis=0).reshape(-1, 2, 3)
    geom = three.BufferGeometry(attributes={"position": three.BufferAttribute(segs.reshape(-1, 3), normalized=False),
                                            "color": three.BufferAttribute(colors.reshape(-1, 3).astype(np.float32))})
    children: list[Any] = [three.LineSegments(geom, three.LineBasicMaterial(vertexColors="VertexColors"))]
    if scene.points is not None and scene.colors is not None:
        xyz, rgb = scene.points, scene.colors
        keep = np.random.default_rng(0).permutation(len(xyz))[:MAX_POINTS]
        pgeom = three.BufferGeometry(attributes={
            "position": three.BufferAttribute(xyz[keep].astype(np.float32), normalized=False),
            "color": three.BufferAttribute((rgb[keep] / 255.0).astype(np.float32))})
        children.append(three.Points(pgeom, three.PointsMaterial(size=0.02 * radius, vertexColors="VertexColors")))
    return children, radius


def _summary_html(report: PoseReport) -> str:
    parts = [f"<b>{report.num_registered}/{report.num_images}</b> images posed ({esc(report.source)})"]
    if report.matcher:
        parts.append(f"matcher: {esc(report.matcher_reason)}")
        parts.append(f"mapper: {esc(report.mapper_reason)}")
    if report.mean_reprojection_error is not None:
        parts.append(f"{report.num_points3D} points, mean track length {report.mean_track_length or 0:.2f}, "
                     f"mean reprojection error {report.mean_reprojection_error:.3f} px")
    parts.append("frusta: <span style='color:#2e7d32'>&lt;= 0.5 px</span> to <span style='color:#c62828'>"
                 "&gt;= 2 px</span> reprojection error (grey: imported, unknown)")
    return "<br>".join(parts)


class PoseViewer(w.VBox, PanelMixin):
    """Pose estimation/import controls, 3D view of frusta and points, and the list of unposed images."""

    def __init__(self, context: StudioContext | None = None, *, poses_dir: str | Path | None = None) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch = JobWatch(self._on_job_view, name="pose-viewer")
        self.notice = Notice()
        self.matcher = w.Dropdown(options=["auto", "exhaustive", "sequential", "retrieval"], description="matcher")
        self.mapper = w.Dropdown(options=["auto", "incremental", "global"], description="mapper")
        self.estimate_button = w.Button(description="Estimate poses", icon="camera", button_style="primary")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.import_path = w.Text(placeholder="transforms.json, COLMAP model folder or poses_bounds.npy",
                                  description="poses file", layout=w.Layout(width="480px"))
        self.import_button = w.Button(description="Import poses", icon="upload")
        self.progress = w.FloatProgress(0.0, min=0.0, max=1.0, description="", layout=w.Layout(width="320px"))
        self.stage = w.HTML("")
        self.summary = w.HTML("<i>No poses yet.</i>")
        self.view = w.Box(layout=w.Layout(min_height="40px"))
        self.unposed = w.VBox()
        self.region_editor = RegionEditor(self.notice)  # the region box and its sliders (with a project)
        self.region_editor.layout.display = "none"
        self.estimate_button.on_click(guarded(self.notice, lambda _b: self.start_estimation()))
        self.cancel_button.on_click(lambda _b: self._stop.set())
        self.import_button.on_click(guarded(self.notice, lambda _b: self.import_file(self.import_path.value)))
        self.project: Project | None = None
        self.poses_dir = Path(poses_dir) if poses_dir is not None else None
        controls = w.VBox([w.HBox([self.matcher, self.mapper, self.estimate_button, self.cancel_button]),
                           w.HBox([self.progress, self.stage]), w.HBox([self.import_path, self.import_button])])
        super().__init__([controls, self.notice, self.summary, self.view, self.region_editor, self.unposed])
        self.add_class("nw-pose-viewer")
        self.bind(context)
        if context is None:
            controls.layout.display = "none" if poses_dir is not None else None
            self.show()

    # --- panel convention ---------------------------------------------------------------------
    def set_project(self, project: Any) -> None:
        self.project = project
        self.poses_dir = project.path("poses") if project is not None else self.poses_dir
        for button in (self.estimate_button, self.import_button):
            button.disabled = project is None
        self.show()

    def refresh(self) -> None:
        if not self._estimating():
            self.show()

    def on_feed(self, events: list[Event] | None) -> None:
        """Poses imported or estimated elsewhere (a cell, another kernel) are shown; a pose job started
        there is followed on its bus (progress bar and stage)."""
        if events is None or about_project(events, self.context, ("project", "removed")):
            self.refresh()
        jobs = about_project(events or [], self.context, ("job",))
        self._watch.catch_up(jobs)  # a pose job running in another kernel: its progress from the store
        for event in jobs:
            d = event.data
            if d["type"] == "estimate_poses" and d["new"] and not self._estimating():
                self._watch.attach(self.project.job(d["job_id"]))  # type: ignore[union-attr]

    def _estimating(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _on_job_view(self, view: dict[str, Any], _batch: Any) -> None:
        prog, state = view.get("progress", {}), view.get("job", {}).get("state", "")
        self.progress.value = float(prog.get("fraction") or 0.0)
        self.stage.value = f"{esc(prog.get('stage') or state)} {esc(prog.get('message') or '')}"
        if state not in ACTIVE_STATES:
            self._watch.detach()
            self.stage.value = esc(f"pose estimation {state}" + (f": {view['job'].get('error')}"
                                                                  if view["job"].get("error") else ""))
            self.show()

    # --- actions (each one Project call) ---------------------------------------------------------
    def start_estimation(self) -> threading.Thread:
        """Run ``project.estimate_poses`` on a thread; progress goes to the bar, Cancel stops it."""
        if self.project is None:
            raise RuntimeError("open a project first")
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("pose estimation is already running")
        self._stop.clear()
        self.estimate_button.disabled, self.cancel_button.disabled = True, False
        self._thread = threading.Thread(target=self._estimate, args=(self.project,), name="pose-estimation",
                                        daemon=True)
        self._thread.start()
        return self._thread

    def _estimate(self, project: Project) -> None:
        try:
            job = project.estimate_poses(matcher=self.matcher.value, mapper=self.mapper.value,
                                         progress=self._on_progress, should_stop=self._stop.is_set)
            row = job.wait()  # a background job of the studio; this thread only follows it
            if row.state != "succeeded":
                raise RuntimeError(row.error or f"pose estimation {row.state}")
            self.notice.info("Poses estimated.")
        except Exception as err:  # noqa: BLE001 - shown inline, the thread must not die silently
            self.notice.error(error_message(err))
        finally:
            self.estimate_button.disabled, self.cancel_button.disabled = False, True
            self.touch()
            self.show()

    def _on_progress(self, event: PoseProgress) -> None:
        self.progress.value = event.overall
        self.stage.value = f"{esc(event.stage)} {esc(event.message)}"

    def import_file(self, path: str) -> None:
        """``project.import_poses(path)`` and show the result."""
        if self.project is None:
            raise RuntimeError("open a project first")
        report = self.project.import_poses(Path(path.strip()).expanduser())
        self.notice.info(f"Imported {report.num_registered} poses.")
        self.touch()
        self.show()

    # --- display ------------------------------------------------------------------------------
    def show(self) -> None:
        """Re-read poses/report.json and redraw the 3D view and the unposed list."""
        from nerf_widgets.studio.catalog import read_pose_folder

        try:
            scene = read_pose_folder(self.poses_dir) if self.poses_dir is not None else None
            if scene is None:
                self.summary.value, self.view.children, self.unposed.children = "<i>No poses yet.</i>", (), ()
                return
            self.summary.value = _summary_html(scene.report)
            self.view.children = (self._renderer(scene),)
            self.unposed.children = tuple(self._unposed_rows(scene.report))
        except Exception as err:  # noqa: BLE001
            self.notice.error(error_message(err))

    def _renderer(self, scene: PoseFolder) -> w.Widget:
        import pythreejs as three

        children, radius = _scene_children(scene)
        region = self._region()
        if region is not None:
            children.append(self.region_editor.scene_object(region))
            self.region_editor.show_region(self.project, region)
        self.region_editor.layout.display = None if region is not None else "none"
        camera = three.PerspectiveCamera(position=[1.6 * radius, -1.6 * radius, 1.1 * radius], up=[0, 0, 1],
                                         fov=50, aspect=1.5, near=0.01 * radius, far=20 * radius)
        scene3d = three.Scene(children=[*children, camera, three.AmbientLight(intensity=1.0)], background="#202124")
        return three.Renderer(camera=camera, scene=scene3d, controls=[three.OrbitControls(controlling=camera)],
                              width=600, height=400)

    def _region(self) -> Any:
        """The project's region (set or proposed), or None without a project or when it cannot be made."""
        if self.project is None:
            return None
        try:
            return self.project.region()
        except Exception as err:  # noqa: BLE001 - the poses still show; the reason goes to the notice
            self.notice.error(f"No region of interest: {error_message(err)}")
            return None

    def _unposed_rows(self, report: PoseReport) -> list[w.Widget]:
        rows: list[w.Widget] = []
        missing = [im for im in report.unregistered]
        if missing:
            rows.append(w.HTML(f"<b>{len(missing)} image(s) without a pose</b>"))
        for im in missing[:200]:
            thumb = w.Image(value=self._thumbnail(Path(im.path)), format="jpeg",
                            layout=w.Layout(width="64px", height="64px", object_fit="contain"))
            rows.append(w.HBox([thumb, w.HTML(f"<code>{esc(im.name)}</code><br>{esc(im.reason or '')}")]))
        return rows

    def _thumbnail(self, path: Path) -> bytes:
        """The project's thumbnail when the image is one of its working copies, else one made from the file."""
        from PIL import Image

        if self.project is not None:
            try:
                return bytes(self.project.thumbnail(path.stem))
            except Exception:  # noqa: BLE001 - not a project image id: fall back to the file itself
                pass
        try:
            with Image.open(path) as img:
                img.thumbnail((64, 64))
                buf = io.BytesIO()
                img.convert("RGB").save(buf, "JPEG", quality=80)
                return buf.getvalue()
        except OSError:
            return b""
