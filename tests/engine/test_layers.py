"""An unbounded field drawn with its centre left out (an export's background): the inverse warps, the copy
with a box emptied, and ``LoadedField.tracer``'s distances and colours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.contracted import PERSPECTIVE, SPHERE, unwarp_points, warp_points
from nerf_widgets.engine.fast import FastModel
from nerf_widgets.engine.field import LoadedField
from nerf_widgets.engine.layers import without
from tests.engine.markers import needs_kernels

FRAME = torch.tensor([[0.0, 0, 1, 0.3], [1, 0, 0, -0.2], [0, 1, 0, 0.5]])  # a rotated reference camera


@pytest.mark.parametrize("warp", [SPHERE, PERSPECTIVE])
def test_unwarp_undoes_warp(warp: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 3, generator=g) * 4
    if warp == PERSPECTIVE:  # only points in front of the reference camera have a perspective image
        p = (x - FRAME[:, 3]) @ FRAME[:, :3]
        x = x[-p[:, 2] > 0.05]
    back, valid = unwarp_points(warp_points(x, warp, FRAME), warp, FRAME)
    assert bool(valid.all())
    torch.testing.assert_close(back, x, atol=2e-3, rtol=2e-4)


def test_unwarp_marks_points_without_preimage() -> None:
    u = torch.tensor([[0.5, 0, 0], [1.5, 0, 0], [2.0, 0, 0], [0, 0, -1.9]])
    _, valid = unwarp_points(u, SPHERE, FRAME)
    assert valid.tolist() == [True, True, False, True]
    _, valid = unwarp_points(torch.tensor([[0.1, 0.2, 0.5], [0.1, 0.2, 0.0], [0.0, 0.0, -0.3]]), PERSPECTIVE, FRAME)
    assert valid.tolist() == [True, False, False]


def room_model(dense: bool = False) -> FastModel:
    """Contracted space holding a blob at the centre (radius 0.5) and a thick wall all around, from radius 3 on
    the +x side and 5 on the other (``dense``: density everywhere)."""
    model = FastModel(torch.tensor([[-2.0] * 3, [2.0] * 3]), False, 0.05,
                      {"res_schedule": [[0, 96]], "proposal_samples": 0})
    dims = model.dims
    axes = [torch.linspace(0, 1, n) for n in dims]
    unit = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    pts, valid = unwarp_points(-2 + 4 * unit, SPHERE, model.warp_frame)
    r = pts.norm(dim=1)
    inner = torch.where(pts[:, 0] > 0, 3.0, 5.0)
    blob, wall = valid & (r < 0.5), valid & (r > inner) & (r < inner + 4.0)
    with torch.no_grad():
        model.density.table[:, 0] = torch.where(blob | wall | dense, 8.0, -30.0)
    model.update_occupancy()
    return model


def test_without_empties_the_box_in_a_copy() -> None:
    model = room_model()
    probe = torch.tensor([[0.0, 0, 0], [0.2, -0.1, 0.1], [3.6, 0, 0], [0.1, -5.5, 0.4]])
    before = model.query_density(probe)
    assert bool((before > 1.0).all())
    cut = without(model, lambda p: (p.abs() <= 1.0).all(1))
    after = cut.query_density(probe)
    assert float(after[:2].max()) < 1e-6  # the blob is gone
    torch.testing.assert_close(after[2:], before[2:])  # the wall is not
    torch.testing.assert_close(model.query_density(probe), before)  # the original still has its blob
    with pytest.raises(ValidationError, match="only grid fields"):
        without(torch.nn.Linear(2, 2), lambda p: p[:, 0] > 0)


def test_without_empties_exactly_an_off_centre_box() -> None:
    """An asymmetric box: a swapped axis or a wrong corner order would empty another place."""
    model = room_model(dense=True)
    lo, hi = torch.tensor([0.2, -0.7, 0.1]), torch.tensor([0.9, -0.1, 0.5])
    cut = without(model, lambda p: ((p >= lo) & (p <= hi)).all(1))
    centre = (lo + hi) / 2
    assert float(cut.query_density(centre[None])[0]) < 1e-6
    for axis in range(3):
        for side, edge in ((-1, lo), (1, hi)):
            probe = centre.clone()
            probe[axis] = edge[axis] + side * 0.1  # two cells outside the box on this side
            assert float(cut.query_density(probe[None])[0]) == pytest.approx(float(model.query_density(probe[None])[0]))


@needs_kernels
def test_tracer_sees_the_wall_behind_the_left_out_centre() -> None:
    model = room_model()
    scale = 2.0  # the model frame is the world rotated, scaled by 2 and shifted: distances come back in world units
    rot = ROT
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = scale * rot, [0.2, -0.1, 0.3]
    field = LoadedField(model, {"transform": transform, "bounded": False}, torch.device("cpu"), 1)
    assert field.has_background
    g = np.random.default_rng(1)
    dirs = g.normal(size=(400, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    model_dirs = dirs @ rot.T
    clear = np.abs(model_dirs[:, 0]) > 0.3  # away from where the wall steps from 3 to 5
    origin = np.linalg.solve(scale * rot, -transform[:3, 3])  # the model frame's centre, in the world
    origins = np.broadcast_to(origin, dirs.shape).astype(np.float32)
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    world = np.linalg.solve(scale * rot, (corners - transform[:3, 3]).T).T  # the model's [-1, 1]^3 in the world
    box = np.stack([world.min(0), world.max(0)])
    _, acc, dist = field.tracer(box)(origins, dirs.astype(np.float32))
    assert float(acc.min()) > 0.9
    wall = (dist * scale)[clear]  # model units: the wall starts at radius 3 (+x) or 5
    expected = np.where(model_dirs[clear, 0] > 0, 3.0, 5.0)
    assert float(np.abs(wall / expected - 1).max()) < 0.25  # cells at radius 5 are ~1 unit deep
    _, acc, dist = field.tracer()(origins, dirs.astype(np.float32))  # nothing left out: the blob at the centre
    assert float(acc.min()) > 0.9 and float((dist * scale).max()) < 0.7


ROT = np.array([[np.cos(0.7), -np.sin(0.7), 0.0], [np.sin(0.7) * 0.6, np.cos(0.7) * 0.6, 0.8],
                [-np.sin(0.7) * 0.8, -np.cos(0.7) * 0.8, 0.6]])  # a rotation that is not symmetric


@needs_kernels
def test_tracer_leaves_out_exactly_the_world_box() -> None:
    """Density everywhere and a world box left out: rays from its centre stop where they leave the box."""
    scale = 2.0
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = scale * ROT, [0.2, -0.1, 0.3]
    field = LoadedField(room_model(dense=True), {"transform": transform, "bounded": False}, torch.device("cpu"), 1)
    origin = np.linalg.solve(scale * ROT, -transform[:3, 3])  # the model frame's centre, in the world
    box = np.stack([origin - [0.1, 0.2, 0.15], origin + [0.25, 0.1, 0.2]])
    centre = box.mean(0)
    dirs = np.random.default_rng(2).normal(size=(300, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        exits = np.where(dirs > 0, (box[1] - centre) / dirs, (box[0] - centre) / dirs).min(1)
    _, acc, dist = field.tracer(box)(np.broadcast_to(centre, dirs.shape).astype(np.float32), dirs.astype(np.float32))
    assert float(acc.min()) > 0.9
    assert float(np.abs(dist - exits).max()) < 0.04  # a model cell is 0.021 world units here


def test_without_copies_only_the_density_table() -> None:
    model = room_model()
    cut = without(model, lambda p: (p.abs() <= 1.0).all(1))
    assert cut.density.table.data_ptr() != model.density.table.data_ptr()
    assert cut.features.table.data_ptr() == model.features.table.data_ptr()  # shared, never written
    assert cut.density.exp_avg.data_ptr() == model.density.exp_avg.data_ptr()
    assert not torch.equal(cut.occ, model.occ)  # its own occupancy: the emptied cells are skipped
