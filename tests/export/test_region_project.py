"""The project's region reaches its jobs: training's config carries it, export meshes only inside it."""

from __future__ import annotations

import numpy as np
import trimesh

from nerf_widgets.core.region import Region
from nerf_widgets.engine.config import TrainConfig, make_config
from nerf_widgets.export import SphereBoxField
from nerf_widgets.jobs import register_job_type
from nerf_widgets.jobs.export_job import make_export_factory
from nerf_widgets.jobs.training import make_training_factory
from tests.jobs.fake_trainer import fake_config, fake_train
from tests.poses.test_project_region import _posed

register_job_type("r_fake_train", make_training_factory(trainer=fake_train, config_builder=fake_config))
register_job_type("r_analytic_export", make_export_factory(loader=lambda run_dir: SphereBoxField()))
SMALL = {"resolution": 48, "faces": 3000, "texture": 0, "min_component": 0.0}
BOX = {"center": [-0.15, 0.0, 0.0], "size": [0.7, 0.7, 0.7], "yaw_deg": 20.0}  # the sphere, cut off the box


def test_training_config_carries_the_region_to_config_json() -> None:
    region = Region.from_dict(BOX).to_dict()
    cfg = make_config("fast", "quick", region=region)
    assert cfg.to_json()["region"] == region
    assert TrainConfig.from_json(cfg.to_json()).region == region
    assert make_config("fast", "quick").region is None


def test_set_region_flows_into_training_and_export(project, tmp_path) -> None:
    _posed(project, tmp_path)
    region = project.set_region(**BOX)
    train = project.start_training(job_type="r_fake_train", max_steps=20)
    assert train.wait(300).state == "succeeded"
    assert train.record().params["overrides"]["region"] == region.to_dict()

    job = project.export("ply", job_type="r_analytic_export", **SMALL)
    assert job.wait(300).state == "succeeded", job.record().error
    assert job.record().params["options"]["region"] == region.to_dict()
    verts = np.asarray(trimesh.load(job.path, force="mesh", process=False).vertices)
    half = 0.5 * region.size + 1e-3
    local = verts - np.array([0.0, 0.0, 0.5 * region.size[2]])  # placed: centred over the origin, floor at 0
    assert np.all(np.abs(local) <= half) and verts[:, 2].min() >= -1e-3

    whole = project.export("ply", job_type="r_analytic_export", region=None, **SMALL)
    assert whole.wait(300).state == "succeeded"
    everything = np.asarray(trimesh.load(whole.path, force="mesh", process=False).vertices)
    assert everything[:, 0].max() > 0.5  # without the region the box next to the sphere is exported too
