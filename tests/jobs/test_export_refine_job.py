"""The export job refines the texture against the run's training photos (read through its photo loader)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.export import PhotoView
from nerf_widgets.jobs import register_job_type, shutdown_runners
from nerf_widgets.jobs.api import start_training
from nerf_widgets.jobs.export_job import make_export_factory, start_export
from nerf_widgets.jobs.export_photos import RunPhotos
from nerf_widgets.jobs.training import make_training_factory
from nerf_widgets.studio import Project, Studio
from tests.export.photos import photo, ring_cameras
from tests.export.test_export_refine import FlatField, stripes, texel_error
from tests.jobs.fake_trainer import fake_config, fake_train

WAIT_S = 300
SMALL = {"resolution": 48, "faces": 4000, "texture": 128}
ASKED: list[Path] = []


def _training(run_dir: Path) -> list[PhotoView]:
    ASKED.append(run_dir)
    field = FlatField(floater=False)
    return [photo(field, c, 48, 54.0, stripes) for c in ring_cameras(16, seed=2)]


def _photos(run_dir: Path, *, training: bool, comparison: bool) -> RunPhotos:
    return RunPhotos(_training(run_dir) if training else None)


register_job_type("r_fake_train", make_training_factory(trainer=fake_train, config_builder=fake_config))
def _held_out(run_dir: Path) -> list[PhotoView]:
    field = FlatField(floater=False)
    return [photo(field, c, 40, 45.0, stripes) for c in ring_cameras(2, seed=5)]


def _and_held_out(run_dir: Path, *, training: bool, comparison: bool) -> RunPhotos:
    return RunPhotos(_training(run_dir) if training else None, _held_out(run_dir) if comparison else None)


register_job_type("r_photo_export", make_export_factory(loader=lambda run_dir: FlatField(floater=False), photos=_photos))
register_job_type("r_compared_export", make_export_factory(loader=lambda run_dir: FlatField(floater=False),
                                                           photos=_and_held_out))


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[Project]:
    studio = Studio(tmp_path / "home")
    project = studio.create_project("stripes")
    project.transition("upload_images", "test")
    project.transition("skip_pose_estimation", "test")
    job = start_training(db=project.db, home=studio.home, project_id=project.id, project_dir=project.dir,
                         job_type="r_fake_train", max_steps=20)
    assert job.wait(WAIT_S).state == "succeeded"
    yield project
    shutdown_runners()
    studio.close()


def test_export_job_refines_with_the_runs_photos_unless_told_not_to(trained: Project) -> None:
    jobs = {m: start_export(db=trained.db, home=trained.studio.home, project_id=trained.id, project_name=trained.name,
                            format="glb", job_type="r_photo_export", refine_minutes=m, **SMALL) for m in (0, 30)}
    for job in jobs.values():
        assert job.wait(WAIT_S).state == "succeeded", job.record().error
    assert len(ASKED) == 1 and ASKED[0].parent.name == "runs"  # photos read once: refine_minutes=0 needs none
    assert texel_error(jobs[30].path) < 0.6 * texel_error(jobs[0].path)


def test_export_job_leaves_the_comparison_beside_its_file(trained: Project) -> None:
    from nerf_widgets.export.compare import read_comparison, sidecar

    job = start_export(db=trained.db, home=trained.studio.home, project_id=trained.id, project_name=trained.name,
                       format="gltf", job_type="r_compared_export", refine_minutes=0, **SMALL)
    assert job.wait(WAIT_S).state == "succeeded", job.record().error
    result = job.record().progress["result"]
    main = job.path.parent / job.record().params["file_name"]  # the .gltf beside its zip
    index = read_comparison(sidecar(main))
    assert index is not None and [v["name"] for v in index["views"]] == ["view 1", "view 2"]
    assert result["comparison"]["mesh_psnr"] == index["mesh_psnr"] and index["views"][0]["photo"].stat().st_size > 0
    import zipfile

    assert not any("compare" in n for n in zipfile.ZipFile(job.path).namelist())  # the download is the model only
