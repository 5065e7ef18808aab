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


def room_model() -> FastModel:
    """Contracted space holding a blob at the centre (radius 0.5) and a thick wall all around from radius 3."""
    model = FastModel(torch.tensor([[-2.0] * 3, [2.0] * 3]), False, 0.05,
                      {"res_schedule": [[0, 96]], "proposal_samples": 0})
    dims = model.dims
    axes = [torch.linspace(0, 1, n) for n in dims]
    unit = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    pts, valid = unwarp_points(-2 + 4 * unit, SPHERE, model.warp_frame)
    r = pts.norm(dim=1)
    blob, wall = valid & (r < 0.5), valid & (r > 3.0) & (r < 6.0)
    with torch.no_grad():
        model.density.table[:, 0] = torch.where(blob | wall, 8.0, -30.0)
    model.update_occupancy()
    return model


def test_without_empties_the_box_in_a_copy() -> None:
    model = room_model()
    probe = torch.tensor([[0.0, 0, 0], [0.2, -0.1, 0.1], [3.6, 0, 0], [0, -3.5, 0.4]])
    before = model.query_density(probe)
    assert bool((before > 1.0).all())
    cut = without(model, lambda p: (p.abs() <= 1.0).all(1))
    after = cut.query_density(probe)
    assert float(after[:2].max()) < 1e-6  # the blob is gone
    torch.testing.assert_close(after[2:], before[2:])  # the wall is not
    torch.testing.assert_close(model.query_density(probe), before)  # the original still has its blob
    with pytest.raises(ValidationError, match="only grid fields"):
        without(torch.nn.Linear(2, 2), lambda p: p[:, 0] > 0)


@needs_kernels
def test_tracer_sees_the_wall_behind_the_left_out_centre() -> None:
    model = room_model()
    scale = 2.0  # the model frame is the world scaled by 2 and shifted: distances come back in world units
    transform = np.diag([scale, scale, scale, 1.0])
    transform[:3, 3] = [0.2, 0.0, 0.0]
    field = LoadedField(model, {"transform": transform, "bounded": False}, torch.device("cpu"), 1)
    assert field.has_background
    g = np.random.default_rng(1)
    dirs = g.normal(size=(400, 3)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origin = (np.array([0.0, 0, 0]) - transform[:3, 3]) / scale  # the model frame's centre, in the world
    origins = np.broadcast_to(origin, dirs.shape).astype(np.float32)
    world_box = np.array([[-1.0, -1, -1], [1, 1, 1]]) / scale + origin  # the model's [-1, 1]^3
    _, acc, dist = field.tracer(world_box)(origins, dirs)
    assert float(acc.min()) > 0.9
    wall = dist * scale  # model units: the wall starts at radius 3
    assert 2.8 < float(np.median(wall)) < 3.6 and float(wall.min()) > 2.5
    _, acc, dist = field.tracer()(origins, dirs)  # nothing left out: the blob at the centre
    assert float(acc.min()) > 0.9 and float((dist * scale).max()) < 0.7


def test_without_copies_only_the_density_table() -> None:
    model = room_model()
    cut = without(model, lambda p: (p.abs() <= 1.0).all(1))
    assert cut.density.table.data_ptr() != model.density.table.data_ptr()
    assert cut.features.table.data_ptr() == model.features.table.data_ptr()  # shared, never written
    assert cut.density.exp_avg.data_ptr() == model.density.exp_avg.data_ptr()
    assert not torch.equal(cut.occ, model.occ)  # its own occupancy: the emptied cells are skipped
