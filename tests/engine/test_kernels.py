"""The fused CPU kernels (numba) against the PyTorch path they replace: same samples, colours and gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from nerf_widgets.engine import kernels
from nerf_widgets.engine.fast import FastModel
from tests.ci import need_tool


@pytest.fixture(autouse=True)
def _kernels_load() -> None:
    """numba is a required dependency: a laptop without working kernels skips, CI fails."""
    need_tool(kernels.available(), f"numba kernels unavailable: {kernels.unavailable_reason()}")


def test_kernels_load_on_this_install() -> None:
    assert kernels.available() and kernels.unavailable_reason() is None


def random_model(bounded: bool, stop_trans: float = 0.0) -> FastModel:
    torch.manual_seed(0)
    aabb = torch.tensor([[-1.0, -1, -1], [1, 1, 1]]) if bounded else torch.tensor([[-2.0, -2, -2], [2, 2, 2]])
    # proposal_samples=0: the fused march of every step, which the PyTorch path mirrors (the proposal sampler
    # of unbounded scenes is CPU-only and tested in test_unbounded.py)
    model = FastModel(aabb, bounded, 0.05, {"res_schedule": [[0, 20]], "stop_trans": stop_trans,
                                            "proposal_samples": 0})
    model.density.table.normal_(0, 3)
    model.features.table.normal_(0, 1)
    model.update_occupancy()
    return model


def random_rays(n: int = 300) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    origins = torch.randn(n, 3, generator=g)
    origins = origins / origins.norm(dim=1, keepdim=True) * 3
    dirs = -origins + 0.5 * torch.randn(n, 3, generator=g)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    return origins, dirs, torch.rand(n, 3, generator=g), torch.rand(n, generator=g), torch.rand(n, 3, generator=g)


def render_and_grads(model: FastModel, fused: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "1" if fused else "0")
    origins, dirs, bg, jitter, target = random_rays()
    for grid in (model.density, model.features):
        grid.grad.zero_()
        grid.touched.zero_()
    model.zero_grad()
    out = model.render_rays(origins, dirs, bg, jitter)
    torch.mean((out["rgb"] - target) ** 2).backward()
    return {"rgb": out["rgb"].detach(), "acc": out["acc"], "depth": out["depth"], "samples": out["samples"],
            "density_grad": model.density.grad.clone(), "feature_grad": model.features.grad.clone(),
            "touched": model.density.touched.clone(), "mlp_grad": model.mlp[0].weight.grad.clone()}


@pytest.mark.parametrize("bounded", [True, False])
def test_fused_path_matches_pytorch_path(bounded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_model(bounded)
    fused = render_and_grads(model, True, monkeypatch)
    ref = render_and_grads(model, False, monkeypatch)
    assert float(fused["samples"]) == float(ref["samples"]) > 1000
    assert bool(fused["touched"].eq(ref["touched"]).all())
    for key in ("rgb", "acc", "depth"):
        torch.testing.assert_close(fused[key], ref[key], atol=1e-5, rtol=1e-4)
    for key in ("density_grad", "feature_grad", "mlp_grad"):
        scale = float(ref[key].abs().max())
        assert scale > 0
        torch.testing.assert_close(fused[key], ref[key], atol=1e-4 * scale, rtol=1e-3)


def test_perspective_warp_matches_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward-facing capture's grid lives in its reference camera's perspective space (x/z, y/z, 1/z): the
    fused march maps points there as ``contracted.warp_points`` does, so samples, colours and gradients agree."""
    from nerf_widgets.engine.contracted import PERSPECTIVE

    model = random_model(False)
    model.warp.fill_(PERSPECTIVE)
    model.warp_frame.copy_(torch.tensor([[1.0, 0, 0, 0.1], [0, 1, 0, 0], [0, 0, 1, 1.0]]))  # at z = 1, looking down -z
    model.aabb.copy_(torch.tensor([[-0.8, -0.6, 0.0], [0.8, 0.6, 2.5]]))
    model.march_box = model.aabb.clone()
    model.update_occupancy()
    g = torch.Generator().manual_seed(3)
    origins = torch.tensor([0.0, 0.0, 1.0]) + 0.1 * torch.randn(300, 3, generator=g)
    dirs = torch.nn.functional.normalize(torch.tensor([0.0, 0.0, -1.0]) + 0.4 * torch.randn(300, 3, generator=g), dim=1)
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("NERF_WIDGETS_KERNELS", flag)
        model.density.grad.zero_()
        model.density.touched.zero_()
        out = model.render_rays(origins, dirs, torch.rand(300, 3, generator=torch.Generator().manual_seed(4)),
                                torch.full((300,), 0.3))
        out["rgb"].square().mean().backward()
        results.append((out["rgb"].detach(), out["samples"], model.density.grad.clone()))
    assert float(results[0][1]) == float(results[1][1]) > 1000
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-4)
    scale = float(results[1][2].abs().max())
    assert scale > 0
    torch.testing.assert_close(results[0][2], results[1][2], atol=1e-4 * scale, rtol=1e-3)


def test_distortion_loss_and_its_gradient_match_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unbounded scenes add mip-NeRF 360's distortion loss: the kernel's per-ray value equals the pairwise
    definition, and the density gradient of MSE + distortion equals autograd's through the PyTorch path."""
    model = random_model(False)
    model.opt["distortion"] = 0.5  # large, so its share of the gradient is far above the tolerance
    origins, dirs, bg, jitter, target = random_rays()
    grads, values = [], []
    for flag in ("1", "0"):
        monkeypatch.setenv("NERF_WIDGETS_KERNELS", flag)
        model.density.grad.zero_()
        model.density.touched.zero_()
        out = model.render_rays(origins, dirs, bg, jitter)
        total, _ = model.loss(out, {"rgb": target})
        total.backward()
        grads.append(model.density.grad.clone())
        values.append(out["distortion"].detach())
    torch.testing.assert_close(values[0], values[1], atol=1e-5, rtol=1e-4)
    assert float(values[0].max()) > 1e-3
    model.opt["distortion"] = 0.0
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "0")
    model.density.grad.zero_()
    model.loss(model.render_rays(origins, dirs, bg, jitter), {"rgb": target})[0].backward()
    scale = float(grads[1].abs().max())
    assert float((grads[1] - model.density.grad).abs().max()) > 0.05 * scale  # the distortion term counts
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4 * scale, rtol=1e-3)

    w = torch.tensor([0.1, 0.5, 0.2, 0.05])  # one ray against the definition, pair by pair
    t, dt = torch.tensor([0.5, 1.0, 1.5, 3.0]), torch.tensor([0.2, 0.4, 0.3, 1.0])
    s0, s1 = (t - dt / 2) / (1 + t - dt / 2), (t + dt / 2) / (1 + t + dt / 2)
    m = (s0 + s1) / 2
    pairs = (w[:, None] * w[None, :] * (m[:, None] - m[None, :]).abs()).sum() + (w * w * (s1 - s0)).sum() / 3
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "1")
    got = kernels.distortion(np.array([0, 4]), t.numpy(), dt.numpy(), w.numpy())
    assert got.shape == (1,) and abs(float(got[0]) - float(pairs)) < 1e-6


def test_fused_march_jumps_empty_blocks_without_changing_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two dense lumps in opposite corners of a 40^3 grid: most 8^3 blocks between them are empty, and the
    fused walk jumps over them; samples, colours and gradients still equal the PyTorch path's."""
    torch.manual_seed(0)
    model = FastModel(torch.tensor([[-1.0, -1, -1], [1, 1, 1]]), True, 0.05,
                      {"res_schedule": [[0, 40]], "stop_trans": 0.0})
    vol = torch.full((40, 40, 40), -20.0)
    # corners 9..15 make cells 8..15 occupied: lumps flush with block faces, where a jump too far would show
    vol[9:16, 1:16, 9:24] = torch.randn(7, 15, 15) * 2
    vol[25:32, 25:40, 33:39] = torch.randn(7, 15, 6) * 2
    model.density.table.copy_(vol.reshape(-1, 1))
    model.features.table.normal_(0, 1)
    model.update_occupancy()
    assert float(torch.from_numpy(model._blocks()).float().mean()) < 0.3
    fused = render_and_grads(model, True, monkeypatch)
    ref = render_and_grads(model, False, monkeypatch)
    assert float(fused["samples"]) == float(ref["samples"]) > 300
    for key in ("rgb", "depth", "density_grad", "feature_grad"):
        torch.testing.assert_close(fused[key], ref[key], atol=1e-5 * max(float(ref[key].detach().abs().max()), 1), rtol=1e-3)


def test_early_termination_drops_samples_behind_opaque_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    full = render_and_grads(random_model(True, stop_trans=0.0), True, monkeypatch)
    stopped = render_and_grads(random_model(True, stop_trans=1e-4), True, monkeypatch)
    assert float(stopped["samples"]) < 0.9 * float(full["samples"])
    assert float((stopped["rgb"] - full["rgb"]).abs().max()) < 2e-3


def test_occupancy_kernel_matches_max_pooling(monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_model(True)
    r = model.res
    vol = torch.full((r, r, r), -20.0)
    vol[3:15, 5:12, 2:9] = torch.randn(12, 7, 7) * 3 - 4  # occupied cells only in a sub-block
    model.density.table.copy_(vol.reshape(-1, 1))
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "0")
    model.update_occupancy()
    ref_occ, ref_box = model.occ.clone(), model.march_box.clone()
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "1")
    model.update_occupancy()
    assert 0.01 < float(ref_occ.float().mean()) < 0.5
    assert float((ref_box[1] - ref_box[0]).max()) < 1.9  # the march box shrank to the block
    assert bool(model.occ.eq(ref_occ).all())
    assert torch.equal(model.march_box, ref_box)


def test_masked_adam_kernel_matches_pytorch_and_skips_untouched_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv("NERF_WIDGETS_KERNELS", flag)
        model = random_model(True)
        grid = model.features
        before = grid.table.clone()
        rows = torch.arange(0, grid.table.shape[0], 3)
        for step in range(3):
            grid.grad[rows] = torch.sin(rows[:, None].float() + step)
            grid.touched[rows] = True
            grid.dirty = True
            grid.adam_step_(0.1)
        assert not bool(grid.touched.any()) and float(grid.grad.abs().max()) == 0.0
        untouched = torch.ones(grid.table.shape[0], dtype=torch.bool)
        untouched[rows] = False
        assert torch.equal(grid.table[untouched], before[untouched])
        results.append((grid.table.clone(), grid.exp_avg_sq.clone(), int(grid.adam_step)))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-9, rtol=1e-5)
    assert results[0][2] == results[1][2] == 3


def test_scatter_sums_do_not_depend_on_the_thread_count_and_launches_keep_pytorchs() -> None:
    """Kernels launch with PyTorch's thread count and leave it alone (OpenMP shares the setting: a launch at
    numba's default count once moved a 1-thread run to 2 threads, and the run stopped being repeatable)."""
    import numba

    rng = np.random.default_rng(0)
    res, m = 12, 5000
    base = rng.integers(0, (res - 1) ** 3, m).astype(np.int64)
    base = (base // (res - 1) ** 2 * res + base // (res - 1) % (res - 1)) * res + base % (res - 1)
    frac = rng.random((m, 3), dtype=np.float32)
    g = rng.standard_normal((m, 4)).astype(np.float32)
    sums, seen = [], []
    previous = torch.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            torch.set_num_threads(threads)
            grad = np.zeros((res**3, 4), np.float32)
            touched = np.zeros(res**3, np.bool_)
            kernels.scatter(grad, touched, base, frac, g, (res, res, res))
            sums.append((grad, touched))
            seen.append((numba.get_num_threads(), torch.get_num_threads()))
    finally:
        torch.set_num_threads(previous)
    assert seen == [(1, 1), (numba.config.NUMBA_NUM_THREADS,) * 2]
    assert np.array_equal(sums[0][0], sums[1][0]) and np.array_equal(sums[0][1], sums[1][1])
    np.testing.assert_allclose(sums[0][0].sum(0), g.sum(0), rtol=1e-4, atol=1e-3)  # trilinear weights sum to 1


def test_grids_with_different_corner_counts_per_axis_read_and_write_the_same_corners() -> None:
    """A perspective grid is finer across than in depth: the PyTorch lookup, the fused gather/scatter and the
    occupancy kernel all index a [rx*ry*rz] table alike, and agree with ``grid_sample`` on its volume."""
    from nerf_widgets.engine.grid import DenseGrid, trilinear_corners

    dims = (9, 6, 4)
    grid = DenseGrid(dims, 3)
    torch.manual_seed(0)
    grid.table.normal_()
    unit = torch.rand(500, 3)
    idx, w = trilinear_corners(unit, dims)
    ours = grid.lookup(idx, w)
    ref = torch.nn.functional.grid_sample(grid.volume()[None], (unit.flip(-1) * 2 - 1)[None, :, None, None, :],
                                          align_corners=True)[0, :, :, 0, 0].T
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    g = unit * (torch.tensor(dims) - 1)
    frac = np.ascontiguousarray((g - g.floor()).numpy())
    base = idx[:, 0].numpy().copy()
    torch.testing.assert_close(torch.from_numpy(kernels.gather(grid.table.numpy(), base, frac, dims)), ours,
                               atol=1e-5, rtol=1e-5)
    upstream = torch.randn(500, 3)
    grid.lookup(idx, w)  # no grad: nothing written
    table = grid.table.clone().requires_grad_(True)
    (torch.nn.functional.embedding_bag(idx, table, per_sample_weights=w, mode="sum") * upstream).sum().backward()
    grid.scatter_grad(base, frac, np.ascontiguousarray(upstream.numpy()))
    torch.testing.assert_close(grid.grad, table.grad, atol=1e-5, rtol=1e-5)
    assert torch.equal(grid.touched, table.grad.abs().sum(1) > 0)
    raw = grid.table[:, 0].contiguous()
    occ = torch.from_numpy(kernels.occupancy(raw.numpy(), dims, 0.5))
    pooled = torch.nn.functional.max_pool3d(raw.view(1, 1, *dims), 2, stride=1).reshape(-1) > 0.5
    assert torch.equal(occ, pooled) and occ.numel() == 8 * 5 * 3


def test_a_grid_saved_before_grids_had_their_own_shape_loads_as_a_cube() -> None:
    from nerf_widgets.engine.grid import DenseGrid

    old = DenseGrid(5, 2)
    old.table.normal_()
    state = {k: v for k, v in old.state_dict().items() if k != "grid_dims"}
    fresh = DenseGrid((7, 4, 3), 2)
    fresh.load_state_dict(state)
    assert fresh.dims == (5, 5, 5) and torch.equal(fresh.table, old.table) and fresh.grad.shape == (125, 2)
    shaped = DenseGrid((7, 4, 3), 2)
    again = DenseGrid(5, 2)
    again.load_state_dict(shaped.state_dict())
    assert again.dims == (7, 4, 3) and again.volume().shape == (2, 7, 4, 3)
