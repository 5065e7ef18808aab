"""One step of texture refinement: the fused lazy-Adam kernel against autograd and Adam's formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerf_widgets.export.refine import Samples, _LazyAdam
from nerf_widgets.export.texture import corners


def reference_step(table: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, samples: Samples, pick: np.ndarray,
                   shape: tuple[int, int], lr: float) -> None:
    """Autograd's gradient of the weighted MSE through the bilinear lookup; Adam on the rows it reaches."""
    idx, w = corners(samples.uv[pick], shape[0], shape[1])
    tab = torch.tensor(table, dtype=torch.float64, requires_grad=True)
    pred = (tab[torch.from_numpy(idx)] * torch.from_numpy(w).double()[..., None]).sum(1)
    wt = torch.from_numpy(samples.weight[pick]).double()
    err = ((pred - torch.from_numpy(samples.rgb[pick]).double() / 255.0) ** 2).sum(1)
    ((wt * err).sum() / wt.sum()).backward()
    grad = tab.grad.numpy()
    rows = np.unique(idx)  # every corner a sample names is touched, even at weight 0
    b1, b2 = 0.9, 0.99
    m[rows] = b1 * m[rows] + (1 - b1) * grad[rows]
    v[rows] = b2 * v[rows] + (1 - b2) * grad[rows] ** 2
    step = (m[rows] / (1 - b1**t)) / (np.sqrt(v[rows] / (1 - b2**t)) + 1e-8)
    table[rows] = np.clip(table[rows] - lr * step, 0.0, 1.0)


@pytest.mark.parametrize("shape", [(64, 64), (80, 48)])  # an object's square atlas; one with its background below
def test_the_fused_step_is_adam_on_the_rows_the_batch_touches(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    size, n = shape[0] * shape[1], 3000
    samples = Samples(rng.random((n, 2)).astype(np.float32), rng.integers(0, 256, (n, 3)).astype(np.uint8),
                      rng.random(n).astype(np.float32) + 0.1, 1)
    start = rng.random((size, 3)).astype(np.float32)
    fused = _LazyAdam(start.copy(), lr=0.05)
    ref, m, v = start.astype(np.float64), np.zeros((size, 3)), np.zeros((size, 3))
    for t in range(1, 4):
        pick = np.sort(rng.choice(n, 200, replace=False))  # a few rows only: the rest must not move
        fused.step(samples, pick, shape)
        reference_step(ref, m, v, t, samples, pick, shape, 0.05)
        assert np.allclose(fused.table, ref, atol=2e-5), np.abs(fused.table - ref).max()
        assert np.allclose(fused.m, m, atol=1e-6) and np.allclose(fused.v, v, atol=1e-8)
    assert not fused.flag.any() and not fused.grad.any()  # the scratch buffers are left clean
    assert (fused.table != start).any(1).sum() < size  # lazy: untouched texels kept their value
