"""Export as a studio job: real files through the export pipeline, the exports table, the lifecycle, cancel.

A stand-in trainer (the engine's callback contract, checkpoints on disk) gives the project a trained run
in milliseconds, and an analytic field (``export.SphereBoxField``) stands in for ``engine.load_field`` so
the export itself is real but fast; ``test_real_engine_export`` goes through the real engine once.
"""

from __future__ import annotations

import base64
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trimesh

from nerf_widgets.core.errors import NotFoundError, StateConflictError, ValidationError
from nerf_widgets.export import SphereBoxField
from nerf_widgets.jobs import register_job_type, shutdown_runners
from nerf_widgets.jobs.api import start_training
from nerf_widgets.jobs.bus import Batch
from nerf_widgets.jobs.export_job import ExportJob, make_export_factory, start_export
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.store import jobs as job_store
from nerf_widgets.studio import Project, Studio
from nerf_widgets.widgets.export_panel import ExportPanel
from nerf_widgets.widgets.panel import StudioContext
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.jobs.jobs_helpers import blocked_in, wait_until
from tests.jobs.jobs_scene import make_scene

register_job_type("g_fake_train", make_training_factory(trainer=fake_train, config_builder=fake_config))
register_job_type("analytic_export", make_export_factory(loader=lambda run_dir: SphereBoxField()))
GATE = threading.Event()  # "gated_export" jobs wait in their load stage until a test opens it


def _gated_loader(run_dir: Path) -> SphereBoxField:
    assert GATE.wait(WAIT_S), "the test never opened the gate"
    return SphereBoxField()


register_job_type("gated_export", make_export_factory(loader=_gated_loader))
PAUSE_WAITS = ("check", "wait_while_paused")  # where a paused job's thread blocks (JobContext)
SMALL = {"resolution": 40, "faces": 3000, "texture": 128}
WAIT_S = 300


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "home")
    yield s
    shutdown_runners()
    s.close()


@pytest.fixture
def trained(studio: Studio) -> Project:
    """A project whose (stand-in) training ended with a checkpoint: TrainingCompleted."""
    project = studio.create_project("Sphere & box")
    project.transition("upload_images", "test")
    project.transition("skip_pose_estimation", "test")
    job = start_training(db=project.db, home=studio.home, project_id=project.id, project_dir=project.dir,
                         job_type="g_fake_train", max_steps=20)
    assert job.wait(WAIT_S).state == "succeeded"
    assert project.state == "TrainingCompleted"
    return project


def _export(project: Project, format: str, job_type: str = "analytic_export", **options: object) -> ExportJob:
    return start_export(db=project.db, home=project.studio.home, project_id=project.id, project_name=project.name,
                        format=format, job_type=job_type, **{**SMALL, **options})


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds "gated_export" jobs in their load stage, so a test can watch or pause them before they run on."""
    GATE.clear()
    yield GATE
    GATE.set()


def test_glb_then_obj_export_records_rows_files_and_lifecycle(trained: Project) -> None:
    job = _export(trained, "glb")
    row = job.wait(WAIT_S)
    assert row.state == "succeeded", row.error
    status = job.status
    assert status["state"] == "succeeded" and status["stage"] == "done" and status["fraction"] == 1.0
    path = job.path
    assert path.name == "Sphere-box.glb" and path.parent == trained.path("exports", job.export_id)
    mesh = trimesh.load(path, force="mesh")
    assert 1000 < len(mesh.faces) <= 3000 and mesh.visual.uv is not None
    assert trained.state == "ModelExported"
    assert [(e.id, e.status, e.format, e.size_bytes) for e in trained.exports()] == [
        (job.export_id, "succeeded", "glb", path.stat().st_size)]

    obj = _export(trained, "obj")
    assert obj.wait(WAIT_S).state == "succeeded"
    download = trained.download_export()  # the newest finished export: the obj, zipped
    assert download.suffix == ".zip" and download == obj.path
    with zipfile.ZipFile(download) as zf:
        assert sorted(Path(n).suffix for n in zf.namelist()) == [".mtl", ".obj", ".png"]
    assert trained.download_export(job.export_id) == path
    assert [h.transition for h in trained.history][-2:] == ["export", "re_export"]
    assert [e.format for e in trained.exports()] == ["obj", "glb"]


def test_progress_reports_every_stage_in_order(trained: Project, gate: threading.Event) -> None:
    job = _export(trained, "ply", job_type="gated_export")
    seen: list[str] = []
    done = threading.Event()

    def note(stage: str | None) -> None:
        if stage and stage not in seen[-1:]:
            seen.append(stage)

    def on_batch(batch: Batch) -> None:
        if batch.snapshot is not None:  # the first delivery: the stage reached before we subscribed
            note(batch.snapshot.state.get("progress", {}).get("stage"))
        for ev in batch.events:
            if ev.kind == "progress":
                note(ev.data.get("stage"))
            if ev.kind == "state" and ev.data["state"] == "succeeded":
                done.set()

    sub = job.watch(on_batch)
    gate.set()  # watching before the job leaves its load stage (from the snapshot or the event itself)
    assert job.wait(WAIT_S).state == "succeeded"
    assert done.wait(WAIT_S), "the final state event reaches the watcher"
    sub.close()
    order = ["load", "sample", "mesh", "cleanup", "bake", "write", "package", "done"]
    assert seen[0] == "load" and seen[-1] == "done" and set(seen) <= set(order)
    # strictly in pipeline order; a watcher the bus resyncs under heavy load may skip a short stage (its contract)
    assert [order.index(s) for s in seen] == sorted({order.index(s) for s in seen}), seen
    assert len(seen) >= 6, seen
    assert job.record().progress["stage"] == "done"


@pytest.mark.parametrize(("format", "options", "error", "match"), [
    ("stl", {}, ValidationError, "unknown format 'stl'"),
    ("glb", {"resolution": 8}, ValidationError, "resolution must be between 32 and 512"),
    ("glb", {"faces": 10}, ValidationError, "faces must be between 500 and 5000000"),
    ("glb", {"texture": 100_000}, ValidationError, "texture must be between"),
    ("obj", {"compress": "draco"}, ValidationError, "applies to glb/gltf only"),
    ("glb", {"colour": "red"}, ValidationError, "unknown export option"),
])
def test_bad_requests_create_no_job(trained: Project, format: str, options: dict, error: type, match: str) -> None:
    jobs_before = [j.id for j in trained.jobs()]
    with pytest.raises(error, match=match):
        trained.export(format, **options)
    assert [j.id for j in trained.jobs()] == jobs_before
    assert trained.exports() == [] and list(trained.path("exports").iterdir()) == []
    assert trained.state == "TrainingCompleted"


def test_export_without_a_trained_model_is_refused(studio: Studio, trained: Project) -> None:
    fresh = studio.create_project("untrained")
    with pytest.raises(StateConflictError, match="a trained model is needed"):
        fresh.export("glb")
    assert job_store.list_jobs(db=fresh.db, project_id=fresh.id) == [] and fresh.exports() == []
    run = Path(trained.jobs()[0].record().run_dir or "")
    for ckpt in (run / "checkpoints").iterdir():  # the project says trained, but the model is gone
        ckpt.unlink()
    (run / "checkpoints" / "step_000020.ckpt").write_text("20")  # not a name the engine writes: no model
    before = len(trained.jobs())
    with pytest.raises(NotFoundError, match="no trained model to export"):
        trained.export("glb")
    assert len(trained.jobs()) == before and trained.exports() == []
    with pytest.raises(NotFoundError, match="no finished export"):
        trained.download_export()


def test_cancel_between_stages_leaves_no_files(trained: Project) -> None:
    job = _export(trained, "glb", resolution=64, texture=256)
    cancelled = threading.Event()

    def on_batch(batch: object) -> None:
        for ev in batch.events:  # type: ignore[attr-defined]
            if ev.kind == "progress" and ev.data.get("stage") == "mesh" and not cancelled.is_set():
                cancelled.set()
                job.cancel()

    sub = job.watch(on_batch)
    row = job.wait(WAIT_S)
    sub.close()
    assert cancelled.is_set() and row.state == "cancelled"
    assert list(trained.path("exports").iterdir()) == []
    (exp,) = trained.exports()
    assert (exp.status, exp.path, exp.size_bytes) == ("cancelled", None, None)
    assert trained.state == "TrainingCompleted"
    with pytest.raises(NotFoundError, match="it is cancelled"):
        trained.download_export(exp.id)


def test_pause_holds_the_export_inside_a_stage_until_resumed(trained: Project, gate: threading.Event) -> None:
    job = _export(trained, "ply", job_type="gated_export", resolution=48)
    stages: list[str] = []
    seen = [0]  # the last sequence number the watcher applied
    done = threading.Event()

    def on_batch(batch: object) -> None:
        for ev in batch.events:  # type: ignore[attr-defined]
            if ev.kind == "progress" and "stage" in ev.data:
                stages.append(ev.data["stage"])
            if ev.kind == "state" and ev.data["state"] == "succeeded":
                done.set()
        seen[0] = batch.last_seq  # type: ignore[attr-defined]

    sub = job.watch(on_batch)
    wait_until(lambda: job.state == "running", what="the export running")
    job.pause()  # while it waits in its load stage; its next progress report must block
    gate.set()
    thread = next(live.thread for live in job.runner.live_jobs() if live.job_id == job.id)
    wait_until(lambda: blocked_in(thread, *PAUSE_WAITS), what="the export blocked by the pause")
    wait_until(lambda: seen[0] == job.bus.seq, what="the watcher caught up")  # nothing more can be published
    assert job.state == "paused" and blocked_in(thread, *PAUSE_WAITS)
    assert "cleanup" not in stages and not any(trained.path("exports").rglob("*.ply"))
    job.resume()
    assert job.wait(WAIT_S).state == "succeeded"
    assert done.wait(WAIT_S), "the final state event reaches the watcher"
    sub.close()
    assert "cleanup" in stages and job.path.is_file()


@pytest.mark.slow
def test_real_engine_export(studio: Studio) -> None:
    """A tiny real training, then glb and (zipped) obj through ``project.export`` and the engine's field."""
    project = studio.create_project("real")
    make_scene(project.dir / "poses")
    project.transition("upload_images", "test scene")
    project.transition("skip_pose_estimation", "analytic poses")
    train = project.start_training(max_steps=8, batch_rays=256, eval_every=8, checkpoint_every=8, eval_max_side=32,
                                   threads=1)
    assert train.wait(900).state == "succeeded", train.error
    glb = project.export("glb", resolution=32, faces=1000, texture=64)
    assert glb.wait(WAIT_S).state == "succeeded", glb.error
    assert project.state == "ModelExported" and glb.record().progress["result"]["source_job"] == train.id
    assert len(trimesh.load(glb.path, force="mesh").faces) > 0
    obj = project.export("obj", resolution=32, faces=1000, texture=64)
    assert obj.wait(WAIT_S).state == "succeeded", obj.error
    assert project.download_export().suffix == ".zip"


@pytest.fixture
def analytic_export_type() -> Iterator[None]:
    """``project.export`` (job type "export") on the analytic field for the duration of a test."""
    register_job_type("export", make_export_factory(loader=lambda run_dir: SphereBoxField()))
    yield
    register_job_type("export", make_export_factory())


def test_export_panel_in_a_project_follows_the_job(studio: Studio, trained: Project,
                                                     analytic_export_type: None) -> None:
    ctx = StudioContext(studio)
    panel = ExportPanel(context=ctx)
    panel.format.value, panel.resolution.value, panel.faces.value, panel.texture.value = "obj", 32, 1000, 512
    panel.export_button.click()
    assert "train a model first" in panel.notice.value  # no project open and no field
    ctx.project = trained
    panel.export_button.click()
    assert panel.job is not None and panel.export_button.disabled  # followed on the job's bus
    assert panel.wait(WAIT_S)
    assert panel.notice.value == "" and panel.progress.bar_style == "success" and ctx.revision == 1
    assert panel.job.status["state"] == "succeeded" and "Download Sphere-box.zip" in panel.download.value
    assert panel.viewer.geometry.attributes["position"].array.shape[0] > 0  # the .obj beside the zip
    assert trained.state == "ModelExported" and [e.format for e in trained.exports()] == ["obj"]


def test_export_panel_starts_at_the_sizes_an_export_gets_when_none_are_given() -> None:
    """One source for the defaults: a script's ``project.export()`` and the panel's untouched fields agree."""
    from nerf_widgets.export.request import make_request

    panel = ExportPanel()
    request = make_request("glb", "model.glb", [[-1, -1, -1], [1, 1, 1]])
    assert (panel.resolution.value, panel.faces.value, panel.texture.value) == (
        request.resolution, request.faces, request.texture)
    assert panel.options()["watertight"] is False
    panel.watertight.value = True  # the print option reaches the request the job makes
    options = {k: v for k, v in panel.options().items() if k != "region"}
    assert make_request("ply", "model.ply", [[-1, -1, -1], [1, 1, 1]], **options).watertight is True
    assert options["background"] is None  # auto: the field decides
    panel.watertight.value = False
    for choice, asked in (("with", True), ("without", False)):
        panel.background.value = choice
        options = {k: v for k, v in panel.options().items() if k != "region"}
        assert make_request("glb", "model.glb", [[-1, -1, -1], [1, 1, 1]], **options).background is asked


class RoomField(SphereBoxField):
    """The analytic object inside a room only its tracer draws: a stand-in for an unbounded capture."""

    has_background = True

    def tracer(self, hide: object = None):  # type: ignore[no-untyped-def]
        from tests.export.test_background import room_trace

        return room_trace


register_job_type("room_export", make_export_factory(loader=lambda run_dir: RoomField()))


def test_export_job_adds_the_background_a_field_can_draw(trained: Project) -> None:
    shelled = _export(trained, "glb", job_type="room_export")
    assert shelled.wait(WAIT_S).state == "succeeded", shelled.error
    result = shelled.record().progress["result"]
    assert result["background"]["faces"] > 0 and "background" in result["seconds"]
    plain = _export(trained, "glb", job_type="room_export", background=False)
    assert plain.wait(WAIT_S).state == "succeeded", plain.error
    assert plain.record().progress["result"]["background"] is None
    assert result["faces"] == plain.record().progress["result"]["faces"] + result["background"]["faces"]


def test_export_panel_in_an_untrained_project_says_why(studio: Studio) -> None:
    ctx = StudioContext(studio)
    ctx.project = studio.create_project("empty")
    panel = ExportPanel(context=ctx)
    panel.export_button.click()
    assert "a trained model is needed" in panel.notice.value and panel.job is None
    assert ctx.project.exports() == []


def test_export_panel_offers_the_file_and_refuses_bad_requests_inline(studio: Studio, trained: Project,
                                                                       analytic_export_type: None) -> None:
    ctx = StudioContext(studio)
    ctx.project = trained
    panel = ExportPanel(context=ctx)
    panel.format.value, panel.compress.value = "ply", "draco"
    panel.export_button.click()
    assert "applies to glb/gltf only" in panel.notice.value and panel.job is None and trained.exports() == []
    panel.compress.value = "none"
    panel.format.value, panel.resolution.value, panel.faces.value, panel.texture.value = "glb", 32, 1000, 512
    panel.start()
    assert panel.wait(WAIT_S)
    data = panel.download.value.split("base64,")[1].split('"')[0]  # the studio home is outside the kernel's folder
    assert base64.b64decode(data) == panel.job.path.read_bytes() == trained.download_export().read_bytes()
    assert not panel.export_button.disabled and panel.cancel_button.disabled


def test_export_panel_cancel_stops_the_job(studio: Studio, trained: Project, gate: threading.Event) -> None:
    register_job_type("export", make_export_factory(loader=_gated_loader))
    try:
        ctx = StudioContext(studio)
        ctx.project = trained
        panel = ExportPanel(context=ctx)
        panel.resolution.value, panel.texture.value = 32, 512
        panel.start()
        assert panel.export_button.disabled and not panel.cancel_button.disabled
        panel.cancel_button.click()  # the job waits at the gate in its load stage: it cannot finish first
        job = panel.job
        wait_until(lambda: (ctx_ := job.runner.live_context(job.id)) is None or ctx_.cancel_requested)
        gate.set()
        assert panel.wait(WAIT_S)
    finally:
        register_job_type("export", make_export_factory())
    assert panel.job.record().state == "cancelled" and "cancelled" in panel.notice.value
    assert panel.progress.bar_style == "danger" and list(trained.path("exports").iterdir()) == []
    assert trained.state == "TrainingCompleted"
