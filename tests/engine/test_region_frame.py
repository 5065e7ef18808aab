"""Training uses the region of interest: the model frame puts the region in the uncontracted unit ball, so the
contracted grid's fine cells cover the object, and everything the field answers stays in the project's frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.core.region import Region, yaw_rotation
from nerf_widgets.engine import load_field, make_config, train
from nerf_widgets.engine.data import MAX_CAMERA_RADIUS, apply_region, load_dataset
from tests.engine.region_scene import OBJECT_BOX, make_room_scene

REGION = Region.from_dict({**OBJECT_BOX, "rotation": yaw_rotation(20.0)})
# as large as the cameras' distance allows the region to fill the ball (cameras at 4, half-diagonal > 2)
LARGE = Region.from_dict({**OBJECT_BOX, "size": [2.6, 2.4, 2.2], "rotation": yaw_rotation(20.0)})


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_room_scene(tmp_path_factory.mktemp("room"))


def _to_model(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x @ t[:3, :3].T + t[:3, 3]


def _uncontract(y: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(y, axis=-1, keepdims=True)
    return np.where(n <= 1.0, y, y / np.maximum(n, 1e-12) / np.maximum(2.0 - n, 1e-9))


def _cells_in_region(transform: np.ndarray, region: Region, res: int = 64) -> int:
    """Cells of a res^3 grid over the contracted cube [-2, 2]^3 whose centres lie in the region (world)."""
    axis = (np.arange(res) + 0.5) / res * 4.0 - 2.0
    y = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    y = y[np.linalg.norm(y, axis=1) < 1.999]
    inv = np.linalg.inv(transform)
    return int(region.contains(_to_model(inv, _uncontract(y))).sum())


def test_region_fills_the_unit_ball_and_maps_back_exactly(room: Path) -> None:
    data = load_dataset(room)
    framed = apply_region(data, LARGE.to_dict())
    assert not framed.bounded and framed.t_lin is not None
    inside = LARGE.center + (np.random.default_rng(0).uniform(-0.5, 0.5, (2000, 3)) * LARGE.size) @ LARGE.rotation.T
    pts = np.concatenate([inside, LARGE.corners()])
    model = _to_model(framed.transform, pts)
    assert np.linalg.norm(model, axis=1).max() <= 1.0 + 1e-9  # all of it uncontracted
    assert np.allclose(np.linalg.norm(_to_model(framed.transform, LARGE.corners()), axis=1), 1.0)  # and no smaller
    assert np.allclose(_to_model(framed.transform, LARGE.center[None]), 0.0)
    back = _to_model(np.linalg.inv(framed.transform), model)
    assert np.abs(back - pts).max() < 1e-12
    cams = np.stack([_to_model(framed.transform, c.c2w[:3, 3][None])[0] for c in data.cameras])
    assert framed.t_lin == pytest.approx(float(np.median(np.linalg.norm(cams, axis=1))) + 1.0)
    assert _cells_in_region(framed.transform, LARGE) > 3 * _cells_in_region(data.transform, LARGE)


def test_small_region_gets_more_grid_cells_and_stays_uncontracted(room: Path) -> None:
    """The object's box is small beside the cameras' distance: the cameras stop at ``MAX_CAMERA_RADIUS`` and the
    box, centred and uncontracted, still gets many times the cells it had in the cameras' frame."""
    data = load_dataset(room)
    framed = apply_region(data, REGION)
    cams = np.stack([_to_model(framed.transform, c.c2w[:3, 3][None])[0] for c in data.cameras])
    assert float(np.median(np.linalg.norm(cams, axis=1))) == pytest.approx(MAX_CAMERA_RADIUS)
    assert np.linalg.norm(_to_model(framed.transform, REGION.corners()), axis=1).max() < 1.0
    before, after = _cells_in_region(data.transform, REGION), _cells_in_region(framed.transform, REGION)
    assert after > 4 * before > 0, (before, after)


def test_tiny_region_keeps_the_cameras_near_the_ball(room: Path) -> None:
    data = load_dataset(room)
    speck = Region.from_dict({"center": OBJECT_BOX["center"], "size": [0.01, 0.01, 0.01]})
    framed = apply_region(data, speck)
    cams = np.stack([_to_model(framed.transform, c.c2w[:3, 3][None])[0] for c in data.cameras])
    assert float(np.median(np.linalg.norm(cams - 0.0, axis=1))) == pytest.approx(MAX_CAMERA_RADIUS, rel=1e-3)


def test_bounded_scene_box_is_cut_to_the_region(tmp_path: Path) -> None:
    from tests.engine.engine_scene import make_scene

    data = load_dataset(make_scene(tmp_path / "spheres", n_views=4, size=16))
    cut = apply_region(data, REGION)
    assert np.allclose(cut.aabb, np.stack([REGION.aabb()[0], REGION.aabb()[1]]))
    assert np.array_equal(cut.transform, np.eye(4))
    far = Region.from_dict({"center": [5.0, 5.0, 5.0], "size": [1.0, 1.0, 1.0]})
    with pytest.raises(ValidationError, match="lies outside the scene's box"):
        apply_region(data, far)


OBJECT_BALL = (np.array([0.5, 0.3, 0.1]), 0.3)  # inside REGION
CLUTTER_BALL = (np.array([-0.9, -0.7, 0.0]), 0.25)  # outside it, still in the uncontracted ball


def _paint(model, transform: np.ndarray, balls) -> None:
    """Write solid world-frame balls into a trained model's density grid (through its model frame)."""
    r = model.res
    u = torch.linspace(0, 1, r, dtype=torch.float64)
    nodes = torch.stack(torch.meshgrid(u, u, u, indexing="ij"), -1).reshape(-1, 3).numpy()
    box = model.aabb.double().cpu().numpy()
    world = _to_model(np.linalg.inv(transform), _uncontract(box[0] + nodes * (box[1] - box[0])))
    solid = np.zeros(len(world), bool)
    for centre, radius in balls:
        solid |= np.linalg.norm(world - centre, axis=1) < radius
    model.density.table[:, 0] = torch.from_numpy(np.where(solid, 30.0, -30.0)).float()


@pytest.fixture(scope="module")
def painted_run(room: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run trained with REGION, whose density is then replaced by two balls of known place (world frame):
    the object inside the region and clutter outside it; saved as the run's newest checkpoint."""
    from nerf_widgets.engine.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
    from nerf_widgets.engine.config import TrainConfig
    from nerf_widgets.engine.models import build_model

    run = tmp_path_factory.mktemp("painted") / "run"
    cfg = make_config("fast", "quick", max_steps=2, max_minutes=0, batch_rays=256, eval_every=0, checkpoint_every=2,
                      threads=1, model={"res_schedule": [[0, 64]], "occ_every": 8}, region=REGION.to_dict())
    train(room, run, cfg, resume=False)
    state = load_checkpoint(latest_checkpoint(run))
    model = build_model(TrainConfig.from_json(state["config"]), state["scene"])
    model.load_state_dict(state["model"])
    _paint(model, np.asarray(state["scene"]["transform"]), [OBJECT_BALL, CLUTTER_BALL])
    save_checkpoint(run, int(state["step"]) + 1, {**state, "model": model.state_dict(), "step": int(state["step"]) + 1})
    return run


def _ball_fit(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    verts = np.asarray(trimesh.load(path, force="mesh").vertices)
    return verts, verts.mean(0)


def test_region_run_exports_its_object_where_it_is_in_the_world(room: Path, painted_run: Path, tmp_path: Path) -> None:
    """A run trained with a region answers in the project's frame: a ball written at a world point through the
    stored transform comes out of a region export at that point (export and field share the frame)."""
    from nerf_widgets.export import export_field

    field = load_field(painted_run)
    assert np.allclose(field.transform, apply_region(load_dataset(room), REGION).transform)
    out = export_field(field.density, field.color, field.aabb, tmp_path / "obj.ply", format="ply", resolution=64,
                       texture=0, faces=20_000, region=REGION.to_dict(), place=False)
    verts, mean = _ball_fit(out.path)
    centre, radius = OBJECT_BALL
    dist = np.linalg.norm(verts - centre, axis=1)
    assert np.abs(mean - centre).max() < 0.05, mean
    assert abs(float(np.median(dist)) - radius) < 0.05 and dist.max() < radius + 0.1


def test_cli_export_crops_to_the_runs_region_and_places_it(painted_run: Path, tmp_path: Path, capsys) -> None:
    from nerf_widgets.cli.main import main

    common = ["--format", "ply", "--resolution", "64", "--texture", "0", "--faces", "20000"]
    assert main(["export", str(painted_run), "--out", str(tmp_path / "region.ply"), "--keep-largest", *common]) == 0
    # the mesh and the engine's render of the field, from the run's photos, scored beside the file
    from nerf_widgets.export.compare import read_comparison

    index = read_comparison(tmp_path / "region.compare")
    assert index is not None and len(index["views"]) == 3 and "region.compare" in capsys.readouterr().err
    assert all(np.isfinite([v["field_psnr"], v["mesh_psnr"]]).all() for v in index["views"])
    verts, mean = _ball_fit(tmp_path / "region.ply")
    placed = REGION.place(OBJECT_BALL[0][None])[0]  # the run's region by default: floor at 0, box up = +Z
    assert np.abs(mean - placed).max() < 0.05, (mean, placed)
    assert np.linalg.norm(verts - placed, axis=1).max() < OBJECT_BALL[1] + 0.1  # no clutter
    assert main(["export", str(painted_run), "--out", str(tmp_path / "whole.ply"), "--region", "none", "--compare", "0",
                 *common]) == 0
    assert not (tmp_path / "whole.compare").exists()
    whole, _ = _ball_fit(tmp_path / "whole.ply")
    assert (np.linalg.norm(whole - CLUTTER_BALL[0], axis=1) < CLUTTER_BALL[1] + 0.1).sum() > 50  # the room came too
    box = json.dumps({"center": CLUTTER_BALL[0].tolist(), "size": [0.7, 0.7, 0.7]})
    assert main(["export", str(painted_run), "--out", str(tmp_path / "clutter.ply"), "--region", box, "--keep-floor",
                 *common]) == 0
    _, mean = _ball_fit(tmp_path / "clutter.ply")  # a box given as JSON: the clutter alone, placed in its box
    assert np.abs(mean - np.array([0.0, 0.0, 0.35])).max() < 0.05, mean
    capsys.readouterr()
    assert main(["export", str(painted_run), "--out", str(tmp_path / "bad.ply"), "--region", "{oops", *common]) == 2
    assert "--region must be run, none" in capsys.readouterr().err
    assert not (tmp_path / "bad.ply").exists()
