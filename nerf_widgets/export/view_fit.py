"""Fitting a view-dependent colour (``view_term.ViewTerm``) to the photos' residuals, after refinement.

What the photos still disagree with the refined texture by is fitted, texel by texel, as ``A(uv) d`` (the rays of
``refine``'s samples turned to the file's frame). The fit is ``refine``'s: minibatch lazy Adam over the same
samples through a bilinear lookup, a ridge that keeps A small where the rays say little, and the photos
``refine`` watched to stop it; it is kept only if those photos got better.
On the 30-minute lego mesh (25 test views, CPU rasteriser, 2x2 supersampled) it measured 28.08 -> 28.66 dB
after 2-3 passes; 8 passes fell back to 28.42 (the watched photos, taken among the training ones, still improved:
test views are elsewhere), so the passes are capped (``MAX_EPOCHS``) as well as the time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from nerf_widgets.core.errors import stop_if_asked
from nerf_widgets.export.bake import dilate
from nerf_widgets.export.formats import z_up_to_y_up
from nerf_widgets.export.refine import (
    EPS_BATCH,
    LR_FLOOR,
    MIN_STEPS_PER_EPOCH,
    Samples,
    adam_rows,
    bilinear_corners,
    cosine_lr,
    mark_rows,
    minibatches,
    touched_texels,
)
from nerf_widgets.export.texture import corners, lookup
from nerf_widgets.export.view_term import ViewTerm, quantise

__all__ = ["ViewTermStats", "fit_view_term"]

DOWNSCALE = 2  # coefficient texels per colour texel per side: 1/2 (lego, 30 min: 1024 texels 28.23, 2048 28.26 dB)
# weight of |A(uv)|^2 per sample against its squared error: it shrinks A where the rays pull weakly, and leaves
# near zero the parts of A along directions no ray came from (lego: without it, below the plain texture)
RIDGE = 0.03
LR = 0.01
BATCH = 1 << 16
MAX_EPOCHS = 3.0
# Adam steps the fit may always take (at LR, A moves ~0.01 a step): few samples make small batches and short
# passes, and 3 passes of a small capture (16 steps each) left a known sheen at a third of its size
MIN_STEPS = 150
CHECKS_PER_EPOCH = 4
PATIENCE = 2


@dataclass
class ViewTermStats:
    """What the fit did: steps, passes, samples, the watched photos' weighted MSE before and after."""

    steps: int
    epochs: float
    samples: int
    watch_mse_before: float
    watch_mse_after: float
    seconds: float
    scale: float


def _shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    return max(1, image_shape[0] // DOWNSCALE), max(1, image_shape[1] // DOWNSCALE)


def _encode(table: np.ndarray, shape: tuple[int, int], touched: np.ndarray) -> ViewTerm:
    """Quantise [h*w,9] coefficients, untouched texels filled from their neighbours (seams, bilinear reach)."""
    return quantise(dilate(table.reshape(*shape, 9), touched))


def _mse(base: np.ndarray, base_shape: tuple[int, int], table: np.ndarray, shape: tuple[int, int], samples: Samples,
         chunk: int = 1 << 20) -> float:
    """Weighted MSE of clip(base + A d) against the samples' colours."""
    assert samples.direction is not None
    total, wsum = 0.0, 0.0
    for s in range(0, len(samples.uv), chunk):
        uv, weight = samples.uv[s : s + chunk], samples.weight[s : s + chunk]
        bi, bw = corners(uv, *base_shape)
        ci, cw = corners(uv, *shape)
        a = lookup(table, ci, cw).reshape(-1, 3, 3)
        term = np.einsum("bck,bk->bc", a, z_up_to_y_up(samples.direction[s : s + chunk]).astype(np.float32))
        err = ((np.clip(lookup(base, bi, bw) + term, 0, 1) - samples.rgb[s : s + chunk] / 255.0) ** 2).sum(1)
        total, wsum = total + float((weight * err).sum()), wsum + float(weight.sum())
    return total / max(wsum, 1e-12)


def fit_view_term(base: np.ndarray, fitted: Samples, watched: Samples | None, budget_s: float,
                  clock: Callable[[], float], *, should_stop: Callable[[], bool] | None = None,
                  progress: Callable[[float], None] | None = None, seed: int = 0) -> tuple[ViewTerm | None, ViewTermStats]:
    """The term over texture ``base`` [H,W,3] uint8 (row 0 = top), fitted to ``fitted`` within ``budget_s``
    seconds of ``clock``, stopped by ``watched`` (samples of held-out photos; both with their rays).

    None when there is nothing to fit or the watched photos got no better than the texture alone.
    """
    t0, n = clock(), len(fitted.uv)
    watched = watched if watched is not None and len(watched.uv) else None  # nothing to watch: fit the passes
    if n == 0 or fitted.direction is None:
        return None, ViewTermStats(0, 0.0, 0, math.nan, math.nan, 0.0, 0.0)
    base_shape, shape = (int(base.shape[0]), int(base.shape[1])), _shape(base.shape)
    table = np.zeros((shape[0] * shape[1], 9), np.float32)
    basef = base.reshape(-1, 3).astype(np.float32) / 255.0

    def score() -> float:
        return math.nan if watched is None else _mse(basef, base_shape, table, shape, watched)

    first = best = score()
    best_table, misses = table.copy(), 0
    m, v, grad = np.zeros_like(table), np.zeros_like(table), np.zeros_like(table)
    flag, rows = np.zeros(len(table), np.bool_), np.empty(len(table), np.int64)
    batch = min(BATCH, max(256, n // MIN_STEPS_PER_EPOCH))
    max_steps = max(MIN_STEPS, math.ceil(MAX_EPOCHS * n / batch))
    every, steps = max(1, math.ceil(n / batch) // CHECKS_PER_EPOCH), 0
    for pick, frac in minibatches(n, batch, max_steps, budget_s, clock, t0, seed):
        if misses >= PATIENCE:
            break
        stop_if_asked(should_stop, "export cancelled while fitting the view-dependent colour", stage="shine")
        steps += 1
        lr = cosine_lr(LR, LR_FLOOR, frac)
        _adam_batch(table, m, v, grad, flag, rows, basef, fitted.uv, fitted.rgb, fitted.weight, fitted.direction, pick,
                    base_shape[0], base_shape[1], shape[0], shape[1], lr, 0.9, 0.99, EPS_BATCH / batch, 1 - 0.9**steps,
                    1 - 0.99**steps, RIDGE)
        if watched is not None and steps % every == 0:
            err = score()
            if err < best * (1 - 1e-4):
                best, best_table, misses = err, table.copy(), 0
            else:
                misses += 1
        if progress is not None and steps % 10 == 0:
            progress(min(1.0, frac))
    if watched is not None:
        table = best_table
    stats = ViewTermStats(steps, round(steps * batch / n, 2), n, first, best, clock() - t0, 0.0)
    if watched is not None and not best < first:
        return None, stats
    term = _encode(table, shape, touched_texels(fitted, shape))
    stats.scale = term.scale
    return term, stats


@njit(cache=True, nogil=True)
def _adam_batch(table: np.ndarray, m: np.ndarray, v: np.ndarray, grad: np.ndarray, flag: np.ndarray,
                rows: np.ndarray, base: np.ndarray, uv: np.ndarray, rgb: np.ndarray, weight: np.ndarray,
                direction: np.ndarray, pick: np.ndarray, bh: int, bw: int, height: int, width: int, lr: float,
                b1: float, b2: float, eps: float, bc1: float, bc2: float, ridge: float) -> None:  # pragma: no cover
    """One lazy Adam step on loss = sum_b wt_b (|base_b + A_b d_b - rgb_b|^2 + ridge |A_b|^2) / sum wt, A_b the
    bilinear lookup of the table, d_b the world ray turned to the file's frame (``refine._adam_batch``'s
    bookkeeping: only the rows the batch touches step)."""
    total = 0.0
    for b in range(pick.shape[0]):
        total += weight[pick[b]]
    scale = 2.0 / max(total, 1e-12)
    touched = 0
    bi, bwt = np.empty(4, np.int64), np.empty(4, np.float32)
    ci, cw = np.empty(4, np.int64), np.empty(4, np.float32)
    a, ray = np.empty(9, np.float32), np.empty(3, np.float32)
    for b in range(pick.shape[0]):
        i = pick[b]
        ray[0], ray[1], ray[2] = direction[i, 0], direction[i, 2], -direction[i, 1]  # to the file's frame
        bilinear_corners(uv[i, 0], uv[i, 1], bh, bw, bi, bwt)
        bilinear_corners(uv[i, 0], uv[i, 1], height, width, ci, cw)
        for j in range(9):
            a[j] = cw[0] * table[ci[0], j] + cw[1] * table[ci[1], j] + cw[2] * table[ci[2], j] + cw[3] * table[ci[3], j]
        for c in range(3):
            pred = bwt[0] * base[bi[0], c] + bwt[1] * base[bi[1], c] + bwt[2] * base[bi[2], c] + bwt[3] * base[bi[3], c]
            for k in range(3):
                pred += a[3 * c + k] * ray[k]
            d = scale * weight[i] * (pred - rgb[i, c] / 255.0)
            for k in range(3):
                g = d * ray[k] + scale * weight[i] * ridge * a[3 * c + k]
                for q in range(4):
                    grad[ci[q], 3 * c + k] += cw[q] * g
        touched = mark_rows(ci, flag, rows, touched)
    adam_rows(table, m, v, grad, flag, rows, touched, lr, b1, b2, eps, bc1, bc2, -np.inf, np.inf)
