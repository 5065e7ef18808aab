"""Fused CPU kernels for the ``fast`` model (numba): march + density + transmittance in one pass per ray.

Why: in plain PyTorch a training step is ~60 small tensor ops over 10^5..10^6 packed samples, each
a full memory pass, plus scatter-adds that run on one thread (profiled at 160^3: 0.7 s a step, over
half of it in index/scatter). Here each ray is walked once: occupancy skip, trilinear density,
transmittance, early termination when the ray is opaque; backward is one reverse pass per ray
(nerfacc's formulation) and one scatter into the grid's gradient buffer. Rays run in parallel; in
scatters each thread owns a range of grid rows and adds in sample order, so sums (and a resumed run)
do not depend on the thread count. Measured at 160^3 on 2 cores: 0.70 -> 0.38 s a step.
The kernels live in ``_numba_kernels``; first use after an install compiles them (~40 s, done by
``FastModel.warm_up`` before the training clock starts), later processes load numba's cache.

The layout matches ``engine.grid`` (channel-last [R^3, C] tables, corner order of
``trilinear_corners``) and ``engine.render.composite_packed``; tests compare both paths.
``FastModel`` and ``DenseGrid`` ask ``used_for(device)``: these kernels for CPU tensors when numba loads,
the PyTorch path otherwise. On CUDA that path is the intended one, not a fallback: it is whole-batch
tensor ops over packed samples (no Python loop over rays or samples), which is what a GPU runs well.
numba is a required dependency, so a CPU run without the kernels is a broken install: the reason is
logged once (``unavailable_reason()``), and the test suite fails on it under ``CI=true``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

Dims = tuple[int, int, int]  # corners per axis of a grid table [rx * ry * rz, C] (x slowest, z fastest)

__all__ = ["available", "composite_backward", "distortion", "gather", "march_density", "march_proposal", "masked_adam", "occupancy",
           "scatter", "unavailable_reason", "used_for"]

log = logging.getLogger(__name__)
_STATE: dict[str, Any] = {}
_LOCK = threading.Lock()
_RUN = threading.Lock()
_OFF = "turned off by NERF_WIDGETS_KERNELS=0"


def available() -> bool:
    """True when numba imports and its thread pool starts (launches from job threads are serialised).
    ``NERF_WIDGETS_KERNELS=0`` turns them off (the PyTorch path then runs; tests compare the two)."""
    if os.environ.get("NERF_WIDGETS_KERNELS", "1") == "0":
        return False
    with _LOCK:
        if "ok" not in _STATE:
            _STATE["ok"] = _load()
        return bool(_STATE["ok"])


def used_for(device: Any) -> bool:
    """The dispatch rule: the fused kernels serve tensors on the CPU (``device`` a ``torch.device``); CUDA
    tensors always take the vectorised PyTorch path, whether or not numba loads."""
    return device.type == "cpu" and available()


def unavailable_reason() -> str | None:
    """Why ``available()`` is False (None when the kernels load)."""
    if available():
        return None
    return _OFF if os.environ.get("NERF_WIDGETS_KERNELS", "1") == "0" else str(_STATE.get("why"))


def _load() -> bool:
    try:
        import numba
    except ImportError as err:
        return _failed(f"numba does not import ({err}); the CPU path of 'fast' runs about 2x slower")
    # OpenMP first: on 2 cores its pool made a trained-lego step 121-133 ms against 167-213 ms on workqueue.
    # Its pool shares libgomp's thread-count setting with PyTorch, so every launch first sets numba's count
    # to PyTorch's (``_sync_threads``); otherwise a launch at numba's default moved a 1-thread run to 2.
    numba.config.THREADING_LAYER = "default"  # type: ignore[attr-defined]
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]  # type: ignore[attr-defined]
    try:
        from nerf_widgets.engine import _numba_kernels as k

        _STATE["k"] = {name: getattr(k, name) for name in k.__all__}
        _sync_threads()
        _STATE["k"]["probe"](np.zeros(4, np.float32))
    except Exception as err:  # noqa: BLE001 - any failure (no threading layer, a compile error) has one remedy
        return _failed(f"the numba kernels do not load ({type(err).__name__}: {err})", err)
    return True


def _failed(why: str, err: BaseException | None = None) -> bool:
    """Remember and log (once, with the traceback) why the kernels are off; the PyTorch path then runs."""
    _STATE["why"] = why
    log.warning("fused CPU kernels unavailable, using the PyTorch path: %s", why, exc_info=err)
    return False


def _call(name: str, *args: Any) -> Any:
    if not available():
        raise RuntimeError("numba kernels are not available")
    with _RUN:
        _sync_threads()
        return _STATE["k"][name](*args)


def _sync_threads() -> None:
    """Launch with PyTorch's thread count (numba's setting is per calling thread, like OpenMP's)."""
    import numba
    import torch

    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


def march_density(origins: np.ndarray, dirs: np.ndarray, u: np.ndarray, t0: np.ndarray, t1: np.ndarray,
                  s: np.ndarray, ds: np.ndarray, field: Any, blocks: np.ndarray, k: int,
                  bounded: bool) -> tuple[np.ndarray, ...]:
    """Every step through occupied cells of rays [N] between ``t0`` and ``t1`` at offsets ``s`` (lengths
    ``ds``) jittered by ``u``; ``field`` is a ``fast_fused.DensityField``. Returns the packed samples."""
    f = field
    return _call("march_density", origins, dirs, u, t0, t1, s, ds, f.occ, blocks, k, f.table, f.dims,  # type: ignore[no-any-return]
                 f.lo, f.size, bounded, f.warp, f.frame, f.shift, f.inv_ref, f.stop_trans)


def march_proposal(origins: np.ndarray, dirs: np.ndarray, u: np.ndarray, t0: np.ndarray, s: np.ndarray,
                   ds: np.ndarray, field: Any, kc: int, n_fine: int, blend: float) -> tuple[np.ndarray, ...]:
    """Unbounded scenes: ``n_fine`` samples a ray placed by a coarse pass over ``kc``-step intervals of the
    schedule, in the pack of ``march_density``."""
    f = field
    return _call("march_proposal", origins, dirs, u, t0, s, ds, kc, n_fine, f.occ, f.table, f.dims, f.lo,  # type: ignore[no-any-return]
                 f.size, f.warp, f.frame, f.shift, f.inv_ref, f.stop_trans, blend)


def composite_backward(*args: Any) -> tuple[np.ndarray, np.ndarray]:
    return _call("composite_backward", *args)  # type: ignore[no-any-return]


def distortion(starts: np.ndarray, t: np.ndarray, dt: np.ndarray, w: np.ndarray) -> np.ndarray:
    """mip-NeRF 360's distortion loss of each ray [N] from the packed samples (midpoints ``t``, lengths ``dt``)."""
    return _call("distortion", starts, t, dt, w)  # type: ignore[no-any-return]


def gather(table: np.ndarray, base: np.ndarray, frac: np.ndarray, dims: Dims) -> np.ndarray:
    return _call("gather", table, base, frac, dims)  # type: ignore[no-any-return]


def scatter(grad: np.ndarray, touched: np.ndarray, base: np.ndarray, frac: np.ndarray, g: np.ndarray, dims: Dims) -> None:
    import numba

    _call("scatter", grad, touched, base, frac, g, dims, numba.get_num_threads())


def masked_adam(table: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, grad: np.ndarray,
                touched: np.ndarray, step: float, b1: float, b2: float, eps: float) -> None:
    _call("masked_adam", table, exp_avg, exp_avg_sq, grad, touched, step, b1, b2, eps)


def occupancy(table: np.ndarray, dims: Dims, raw_min: float) -> np.ndarray:
    return _call("occupancy", table, dims, raw_min)  # type: ignore[no-any-return]

