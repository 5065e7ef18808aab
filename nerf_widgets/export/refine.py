"""Texture refinement: optimise the baked texels against the training photos (Adam, a time budget).

The bake reads colour from the field, which is blurrier than the photos it was trained on, and the
mesh's surface is not exactly where the field's colour sits. Here the fixed mesh is rasterised into every
training view once (``raster``); each covered pixel becomes a sample (its UV, its photo colour, a weight).
The texture is then fitted to those samples by minibatch Adam through a bilinear texture lookup, the one
OpenGL does at the finest mip level: four texels per sample, the lookup's gradient scattered to them, and a
step updates only the texels its batch sees (a lazy Adam), whatever the texture size. Where a photo pixel
covers many texels it is split into sub-pixels (``_subpixels``), so every texel under it gets samples.

Masked photos: a pixel's alpha ``a`` says how much of it is the object. Composited on any background
``bg``, the render ``a*t + (1-a)*bg`` against the photo ``a*c + (1-a)*bg`` leaves the residual ``a*(t-c)``,
so the loss weighs ``(t-c)^2`` by ``a^2`` and the background the trainer used drops out. Grazing views are
down-weighted by the cosine between the face normal and the view ray.

Every eighth photo is kept out of the fit and watched: when its error stops falling the fit stops and the
best texels are kept (``_Watch``), and Adam's epsilon is scaled to the batch so texels few samples reach move
little: a mesh is never exactly where the photos' surfaces are, and fitting on turns colour into noise.

Texels no sample reaches keep the bake; uncovered texels are then re-filled by ``bake.dilate`` from the
covered and refined ones, so seams and mipmaps see the refined colours.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from nerf_widgets.core.errors import ValidationError, stop_if_asked
from nerf_widgets.export.bake import dilate
from nerf_widgets.export.raster import project, rasterize
from nerf_widgets.export.texture import corners, lookup
from nerf_widgets.export.views import PhotoView, check_views

__all__ = ["RefineStats", "Samples", "adam_rows", "bilinear_corners", "cosine_lr", "gather_samples", "mark_rows",
           "minibatches", "refine_texture", "refine_with_samples", "touched_texels"]

ProgressFn = Callable[[float], None]
Shape = tuple[int, int]  # a texture's rows and columns (an object's atlas is square; with its background below, not)
BATCH = 1 << 16  # samples per Adam step (fewer when there are few samples: at least MIN_STEPS_PER_EPOCH steps a pass)
MIN_STEPS_PER_EPOCH = 16
LR = 0.01  # texel units (colours in [0, 1]); cosine-decayed to LR_FLOOR * LR over the budget
LR_FLOOR = 0.05
MAX_EPOCHS = 40.0  # a converged fit stops before the budget: passes over all samples
MAX_SUBPIXELS = 4  # samples per photo pixel side, when texels are smaller than pixels
MAX_SAMPLES = 12_000_000  # over all views (memory: 31 bytes each, their rays included)
GATHER_SHARE = 0.5  # at most this share of the budget goes to rasterising views (the rest is fitting)
# Adam's epsilon, times the batch size (the gradient of a batch's mean scales as 1 / batch): a texel whose
# samples pull weakly (grazing or half-covered pixels) then moves less than one they pull hard, where plain
# Adam's step size is the same for both. On a 2-minute lego mesh (1e-8 before), three passes had taken the edge
# pixels of test views from 29.8 to 27.5 dB while their insides went from 25.3 to 27.3; with this, 29.2 and 27.2.
EPS_BATCH = 0.2
# Early stopping: every HOLDOUT_EVERY-th photo (when there are at least that many) is kept out of the fit and
# watched, CHECKS_PER_EPOCH times a pass; after PATIENCE checks without improvement the fit stops and the best
# texels are kept. The mesh is never exactly where the photos' surfaces are, so fitting on goes from colour into
# noise: on that mesh, held-out test PSNR 24.6 dB after half a pass fell to 21.7 after eight (epsilon 1e-8).
HOLDOUT_EVERY = 8
CHECKS_PER_EPOCH = 10
PATIENCE = 3
MAX_WATCH_SAMPLES = 500_000
CLOCK: Callable[[], float] = time.perf_counter  # the budget's clock (a benchmark on a shared machine may count CPU time)


@dataclass
class Samples:
    """One row per covered photo (sub-)pixel: uv [N,2] (OpenGL, v up), rgb [N,3] uint8, weight [N] (>0)."""

    uv: np.ndarray
    rgb: np.ndarray
    weight: np.ndarray
    views: int
    view: np.ndarray | None = None  # [N] which of the gathered views each sample comes from
    direction: np.ndarray | None = None  # [N,3] float32 unit ray from the camera to the surface point, world frame

    def subset(self, rows: np.ndarray) -> Samples:
        """The samples at ``rows`` (a bool mask or indices)."""
        view = None if self.view is None else self.view[rows]
        direction = None if self.direction is None else self.direction[rows]
        return Samples(self.uv[rows], self.rgb[rows], self.weight[rows], self.views, view, direction)


@dataclass
class RefineStats:
    """What a refinement did: photo-space weighted MSE before/after, Adam steps, samples, views used."""

    steps: int
    epochs: float
    samples: int
    views: int
    mse_before: float
    mse_after: float
    seconds: float
    watched_views: int = 0  # photos kept out of the fit to stop it (early stopping)
    watch_mse_before: float = math.nan
    watch_mse_after: float = math.nan
    stopped_early: bool = False


def _face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    n = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)


def _photo_at(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear photo colour (straight) and alpha at pixel coordinates x, y [M] (centres at +0.5).

    Interpolated premultiplied, so a transparent neighbour's (meaningless) colour never leaks in.
    """
    h, w = image.shape[:2]
    px, py = np.clip(x - 0.5, 0, w - 1), np.clip(y - 0.5, 0, h - 1)
    x0, y0 = np.minimum(px.astype(np.int64), w - 2 if w > 1 else 0), np.minimum(py.astype(np.int64), h - 2 if h > 1 else 0)
    fx, fy = (px - x0)[:, None], (py - y0)[:, None]
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    img = image.astype(np.float32) / 255.0
    if img.shape[2] == 3:
        img = np.concatenate([img, np.ones((h, w, 1), np.float32)], 2)
    img[..., :3] *= img[..., 3:]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    mix = top * (1 - fy) + bottom * fy
    alpha = mix[:, 3]
    return mix[:, :3] / np.maximum(alpha, 1e-6)[:, None], alpha


def _area2(p: np.ndarray) -> np.ndarray:
    """Twice the area of 2D triangles p [F,3,2]."""
    a, b = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    return np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])


def _subpixels(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, shape: Shape, view: PhotoView) -> int:
    """Sub-pixels per side so one sample lands on about one texel: sqrt(texels per pixel), in 1..MAX_SUBPIXELS.

    A photo pixel seen from afar covers many texels; fitted at its centre only, those texels would be
    underdetermined (noise that mipmapping does not hide). Texels per pixel: the median over faces in view
    of (UV area in texels) / (screen area in pixels).
    """
    screen = project(verts, view)
    ahead = (screen[faces, 2] > 0).all(1)
    s, t = screen[faces[ahead], :2], uv[faces[ahead]] * np.array([shape[1], shape[0]], np.float64)
    screen_area, uv_area = _area2(s), _area2(t)
    ok = screen_area > 1e-9
    if not ok.any():
        return 1
    ratio = float(np.median(uv_area[ok] / screen_area[ok]))
    return int(np.clip(round(np.sqrt(ratio)), 1, MAX_SUBPIXELS))


def _view_samples(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, normals: np.ndarray, shape: Shape,
                  view: PhotoView, cap: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(uv [M,2], rgb uint8 [M,3], weight [M], unit ray [M,3] float32) of the (sub-)pixels of ``view`` the mesh
    covers, at most ``cap``."""
    scale = _subpixels(verts, faces, uv, shape, view)
    frags = rasterize(verts, faces, view, scale)
    rows, cols = np.nonzero(frags.covered)
    if len(rows) > cap:
        pick = np.sort(rng.choice(len(rows), cap, replace=False))
        rows, cols = rows[pick], cols[pick]
    fid = frags.face_id[rows, cols]
    b = frags.bary[rows, cols]  # [M,3]
    tri = faces[fid]
    px_uv = (uv[tri] * b[..., None]).sum(1)
    points = (verts[tri] * b[..., None]).sum(1)
    ray = points - np.asarray(view.c2w, np.float64)[:3, 3]
    ray /= np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-20)
    cos = np.abs((normals[fid] * ray).sum(1))
    rgb, alpha = _photo_at(view.image, (cols + 0.5) / scale, (rows + 0.5) / scale)
    weight = (alpha * alpha * cos).astype(np.float32)
    keep = weight > 1e-3
    return (px_uv[keep].astype(np.float32), (np.clip(rgb[keep], 0, 1) * 255 + 0.5).astype(np.uint8), weight[keep],
            ray[keep].astype(np.float32))


def gather_samples(verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, size: int | Shape, views: Sequence[PhotoView],
                   progress: ProgressFn | None = None, out_of_time: Callable[[], bool] | None = None,
                   seed: int = 0) -> Samples:
    """Rasterise each view once (``size``: texture side, or rows and columns); stops early (fewer views) when
    ``out_of_time`` says so."""
    shape = _as_shape(size)
    normals = _face_normals(verts, faces)
    rng = np.random.default_rng(seed)
    cap = max(1, MAX_SAMPLES // max(len(views), 1))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for i, view in enumerate(views):
        if out_of_time is not None and parts and out_of_time():
            break
        parts.append(_view_samples(verts, faces, uv, normals, shape, view, cap, rng))
        if progress is not None:
            progress((i + 1) / len(views))
    if not parts:
        return Samples(np.zeros((0, 2), np.float32), np.zeros((0, 3), np.uint8), np.zeros(0, np.float32), 0,
                       np.zeros(0, np.int32), np.zeros((0, 3), np.float32))
    which = np.concatenate([np.full(len(p[0]), i, np.int32) for i, p in enumerate(parts)])
    uv, rgb, weight, ray = (np.concatenate([p[k] for p in parts]) for k in range(4))
    return Samples(uv, rgb, weight, len(parts), which, ray)


def split_watch(samples: Samples, seed: int = 0) -> tuple[Samples, Samples | None]:
    """(samples to fit, samples of the watched photos or None): every HOLDOUT_EVERY-th view, from that many on,
    at most MAX_WATCH_SAMPLES of them."""
    if samples.view is None or samples.views < HOLDOUT_EVERY:
        return samples, None
    watched = samples.view % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    rows = np.nonzero(watched)[0]
    if len(rows) > MAX_WATCH_SAMPLES:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_WATCH_SAMPLES, replace=False))
    return samples.subset(~watched), samples.subset(rows)


def _as_shape(size: int | Shape) -> Shape:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _mse(table: np.ndarray, samples: Samples, shape: Shape, chunk: int = 1 << 20) -> float:
    """Weighted photo-space MSE of the current texels over all samples."""
    total, weight = 0.0, 0.0
    for s in range(0, len(samples.uv), chunk):
        idx, w = corners(samples.uv[s : s + chunk], shape[0], shape[1])
        err = ((lookup(table, idx, w) - samples.rgb[s : s + chunk] / 255.0) ** 2).sum(1)
        wt = samples.weight[s : s + chunk]
        total, weight = total + float((wt * err).sum()), weight + float(wt.sum())
    return total / max(weight, 1e-12)


def touched_texels(samples: Samples, shape: Shape) -> np.ndarray:
    """[rows,cols] bool: texels some sample's bilinear footprint reaches (they carry refined colours)."""
    hit = np.zeros(shape[0] * shape[1], bool)
    for s in range(0, len(samples.uv), 1 << 20):
        idx, w = corners(samples.uv[s : s + (1 << 20)], shape[0], shape[1])
        hit[idx[w > 0]] = True
    return hit.reshape(shape)


class _LazyAdam:
    """Adam on the rows of the texel table a batch touches (lazy Adam): O(batch) per step, whatever its size.

    Moments of untouched rows stay as they were; bias correction uses the global step, as TensorFlow's
    LazyAdam does. One fused numba pass per batch (``_adam_batch``): the loss gradient through the bilinear
    lookup is scattered into a dense buffer while the touched rows are listed, then only those rows step and
    their buffer is cleared. The numpy version (unique + bincount per batch) managed ~4 steps a second on
    lego's 9M samples, under 2 passes in the default minute; single-threaded on purpose, as before: torch's
    threaded sort/unique/scatter on batches this small ran 30x slower on a shared 2-core machine.
    """

    def __init__(self, table: np.ndarray, lr: float, betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8):
        self.table, self.lr, self.betas, self.eps, self.t = table, lr, betas, eps, 0
        self.m, self.v, self.grad = np.zeros_like(table), np.zeros_like(table), np.zeros_like(table)
        self.flag = np.zeros(len(table), np.bool_)
        self.rows = np.empty(len(table), np.int64)

    def step(self, samples: Samples, pick: np.ndarray, shape: Shape) -> None:
        """One step on the samples ``pick`` indexes (their weighted MSE through the bilinear lookup)."""
        self.t += 1
        b1, b2 = self.betas
        _adam_batch(self.table, self.m, self.v, self.grad, self.flag, self.rows, samples.uv, samples.rgb,
                    samples.weight, pick, shape[0], shape[1], self.lr, b1, b2, self.eps, 1 - b1**self.t, 1 - b2**self.t)


@njit(cache=True, nogil=True)
def bilinear_corners(u: float, v: float, height: int, width: int, idx: np.ndarray, w: np.ndarray) -> None:  # pragma: no cover
    """``texture.corners`` for one uv (v up) in numba: the four texel indices into ``idx``, weights into ``w``."""
    x = u * width - 0.5
    y = (1.0 - v) * height - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    xa, xb = min(max(int(x0), 0), width - 1), min(max(int(x0) + 1, 0), width - 1)
    ya, yb = min(max(int(y0), 0), height - 1), min(max(int(y0) + 1, 0), height - 1)
    idx[0], idx[1], idx[2], idx[3] = ya * width + xa, ya * width + xb, yb * width + xa, yb * width + xb
    w[0], w[1], w[2], w[3] = (1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy


@njit(cache=True, nogil=True)
def mark_rows(idx: np.ndarray, flag: np.ndarray, rows: np.ndarray, touched: int) -> int:  # pragma: no cover
    """List the rows ``idx`` of the table a batch reaches (once each); returns how many are listed."""
    for k in range(idx.shape[0]):
        if not flag[idx[k]]:
            flag[idx[k]] = True
            rows[touched] = idx[k]
            touched += 1
    return touched


@njit(cache=True, nogil=True)
def adam_rows(table: np.ndarray, m: np.ndarray, v: np.ndarray, grad: np.ndarray, flag: np.ndarray, rows: np.ndarray,
              touched: int, lr: float, b1: float, b2: float, eps: float, bc1: float, bc2: float, low: float,
              high: float) -> None:  # pragma: no cover
    """One Adam step on the listed rows of ``table`` (kept within [low, high]); their gradient and flag cleared."""
    for j in range(touched):
        r = rows[j]
        for c in range(table.shape[1]):
            g = grad[r, c]
            m[r, c] = b1 * m[r, c] + (1 - b1) * g
            v[r, c] = b2 * v[r, c] + (1 - b2) * g * g
            value = table[r, c] - lr * (m[r, c] / bc1) / (np.sqrt(v[r, c] / bc2) + eps)
            table[r, c] = min(max(value, low), high)
            grad[r, c] = 0.0
        flag[r] = False


@njit(cache=True, nogil=True)
def _adam_batch(table: np.ndarray, m: np.ndarray, v: np.ndarray, grad: np.ndarray, flag: np.ndarray,
                rows: np.ndarray, uv: np.ndarray, rgb: np.ndarray, weight: np.ndarray, pick: np.ndarray, height: int,
                width: int, lr: float, b1: float, b2: float, eps: float, bc1: float, bc2: float) -> None:  # pragma: no cover
    """loss = sum_b wt_b |sum_k w_bk T[idx_bk] - rgb_b|^2 / sum_b wt_b (the lookup of ``texture.corners``), so
    d loss / d T[r] = sum over the (b, k) with idx_bk = r of w_bk * 2 wt_b (pred_b - rgb_b) / sum wt."""
    total = 0.0
    for b in range(pick.shape[0]):
        total += weight[pick[b]]
    scale = 2.0 / max(total, 1e-12)
    touched = 0
    idx = np.empty(4, np.int64)
    w = np.empty(4, np.float32)
    for b in range(pick.shape[0]):
        i = pick[b]
        bilinear_corners(uv[i, 0], uv[i, 1], height, width, idx, w)
        for c in range(3):
            pred = w[0] * table[idx[0], c] + w[1] * table[idx[1], c] + w[2] * table[idx[2], c] + w[3] * table[idx[3], c]
            d = scale * weight[i] * (pred - rgb[i, c] / 255.0)
            for k in range(4):
                grad[idx[k], c] += w[k] * d
        touched = mark_rows(idx, flag, rows, touched)
    adam_rows(table, m, v, grad, flag, rows, touched, lr, b1, b2, eps, bc1, bc2, 0.0, 1.0)


@dataclass
class _Watch:
    """Early stopping on the watched photos: the best texels so far and how many checks since."""

    samples: Samples | None
    best: float = math.inf
    best_table: np.ndarray | None = None
    misses: int = 0
    first: float = math.nan

    def check(self, table: np.ndarray, shape: Shape) -> bool:
        """Score the texels now; True when the fit should stop (PATIENCE checks without improvement)."""
        if self.samples is None:
            return False
        err = _mse(table, self.samples, shape)
        self.first = err if math.isnan(self.first) else self.first
        if err < self.best * (1 - 1e-4):
            self.best, self.best_table, self.misses = err, table.copy(), 0
            return False
        self.misses += 1
        return self.misses >= PATIENCE

    def keep_best(self, table: np.ndarray, shape: Shape) -> float:
        """Put the best texels back when the last ones are worse; returns the watched error kept."""
        if self.samples is None or self.best_table is None:
            return math.nan
        if _mse(table, self.samples, shape) > self.best:
            table[:] = self.best_table
        return self.best


def minibatches(n: int, batch: int, max_steps: int, budget_s: float, clock: Callable[[], float], t0: float,
                seed: int) -> Iterator[tuple[np.ndarray, float]]:
    """Shuffled batches of ``n`` rows (sorted: samples of one view sit together in memory) and how far the schedule
    is, by ``clock`` against ``budget_s`` seconds from ``t0`` or by steps against ``max_steps``, whichever is further;
    ends when that reaches 1."""
    rng = np.random.default_rng(seed)
    order, pos, steps = rng.permutation(n), 0, 0
    while steps < max_steps:
        frac = max((clock() - t0) / budget_s if budget_s > 0 else 1.0, steps / max_steps)
        if frac >= 1.0:
            return
        if pos >= n:
            order, pos = rng.permutation(n), 0
        yield np.sort(order[pos : pos + batch]), frac
        pos, steps = pos + batch, steps + 1


def cosine_lr(lr: float, floor: float, frac: float) -> float:
    """``lr`` decayed along a half cosine to ``floor * lr`` as ``frac`` goes from 0 to 1."""
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


def _fit(table: np.ndarray, samples: Samples, shape: Shape, budget_s: float, clock: Callable[[], float], t0: float,
         progress: ProgressFn | None, should_stop: Callable[[], bool] | None, seed: int,
         watch: _Watch) -> tuple[int, float, bool]:
    """Adam over shuffled minibatches until the budget, MAX_EPOCHS or the watched photos stop improving;
    returns (steps, epochs, stopped early)."""
    n = len(samples.uv)
    batch = min(BATCH, max(256, n // MIN_STEPS_PER_EPOCH))
    opt = _LazyAdam(table, LR, eps=EPS_BATCH / batch)
    every, steps = max(1, math.ceil(n / batch) // CHECKS_PER_EPOCH), 0
    stopped = watch.check(table, shape)  # the bake's own score: refinement has to beat it
    for pick, frac in minibatches(n, batch, math.ceil(MAX_EPOCHS * n / batch), budget_s, clock, t0, seed):
        if stopped:
            break
        stop_if_asked(should_stop, "export cancelled during texture refinement", stage="refine")
        opt.lr = cosine_lr(LR, LR_FLOOR, frac)
        opt.step(samples, pick, shape)
        steps += 1
        if steps % every == 0:
            stopped = watch.check(table, shape)
        if progress is not None and steps % 10 == 0:
            progress(min(1.0, frac))
    return steps, steps * batch / max(n, 1), stopped


def refine_texture(image: np.ndarray, covered: np.ndarray, verts: np.ndarray, faces: np.ndarray, uv: np.ndarray,
                   views: Sequence[PhotoView], minutes: float, *, progress: ProgressFn | None = None,
                   should_stop: Callable[[], bool] | None = None, clock: Callable[[], float] | None = None,
                   seed: int = 0) -> tuple[np.ndarray, RefineStats]:
    """Refined texture [H,W,3] uint8 for mesh (verts [V,3] world, faces [F,3], uv [V,2] OpenGL) and stats.

    ``image`` is the bake [H,W,3] uint8 (row 0 = top), ``covered`` [H,W] its texels inside UV triangles.
    ``minutes`` bounds the whole stage by ``clock`` (rasterising included); ``minutes=0`` returns the bake.
    """
    out, stats, _ = refine_with_samples(image, covered, verts, faces, uv, views, minutes, progress=progress,
                                        should_stop=should_stop, clock=clock, seed=seed)
    return out, stats


def refine_with_samples(image: np.ndarray, covered: np.ndarray, verts: np.ndarray, faces: np.ndarray,
                        uv: np.ndarray, views: Sequence[PhotoView], minutes: float, *,
                        progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None,
                        clock: Callable[[], float] | None = None,
                        seed: int = 0) -> tuple[np.ndarray, RefineStats, tuple[Samples, Samples | None] | None]:
    """``refine_texture``, and the samples it fitted and watched (None when it gathered none), for a later fit
    on the same rays (``view_fit``)."""
    if not (isinstance(minutes, (int, float)) and not isinstance(minutes, bool) and 0 <= minutes < math.inf):
        raise ValidationError(f"refine_minutes must be a number >= 0, got {minutes!r}", field="refine_minutes")
    views = check_views(views)
    clock = clock or CLOCK
    t0, shape = clock(), (int(image.shape[0]), int(image.shape[1]))
    if minutes == 0:
        return image, RefineStats(0, 0.0, 0, 0, math.nan, math.nan, 0.0), None
    budget = minutes * 60.0
    samples = gather_samples(verts, faces, uv, shape, views, None if progress is None else (lambda f: progress(0.1 * f)),
                             out_of_time=lambda: clock() - t0 > GATHER_SHARE * budget, seed=seed)
    if len(samples.uv) == 0:
        return image, RefineStats(0, 0.0, 0, samples.views, math.nan, math.nan, clock() - t0), None
    table = image.reshape(-1, 3).astype(np.float32) / 255.0
    fitted, watched = split_watch(samples, seed)
    del samples
    watch = _Watch(watched)
    before = _mse(table, fitted, shape)
    steps, epochs, stopped = _fit(table, fitted, shape, budget, clock, t0,
                                  None if progress is None else (lambda f: progress(0.1 + 0.9 * f)), should_stop, seed,
                                  watch)
    kept = watch.keep_best(table, shape)
    after = _mse(table, fitted, shape)
    out = dilate(table.reshape(image.shape), covered | touched_texels(fitted, shape))
    n_watched = 0 if watched is None or watched.view is None else len(np.unique(watched.view))
    stats = RefineStats(steps, round(epochs, 2), len(fitted.uv), fitted.views, before, after, clock() - t0,
                        n_watched, watch.first, kept, stopped)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), stats, (fitted, watched)
