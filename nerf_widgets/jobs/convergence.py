"""Convergence status of a run from its PSNR (and loss) series: improving, plateau, converged, diverging.

Batch PSNR is noisy, so windows are compared by their means: the gain of the latest window over the
one before it, in dB. The latest window falling more than ``diverging_db`` below either of the two
before it (or a non-finite loss) is divergence; a gain above ``improving_db`` is improvement;
otherwise a plateau, which becomes "converged" once the previous window was flat too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = ["ConvergenceStatus", "ConvergenceVerdict", "assess_convergence"]


class ConvergenceStatus(str, Enum):
    UNKNOWN = "unknown"  # too few points yet
    IMPROVING = "improving"
    PLATEAU = "plateau"
    CONVERGED = "converged"
    DIVERGING = "diverging"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ConvergenceVerdict:
    status: ConvergenceStatus
    gain_db: float  # mean PSNR of the last window minus the one before
    window: int  # points per window
    message: str


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def assess_convergence(psnr: Sequence[float], loss: Sequence[float] = (), *, window: int = 50,
                       improving_db: float = 0.1, diverging_db: float = 0.5) -> ConvergenceVerdict:
    """Judge the last ``3 * window`` values of ``psnr`` (dB, oldest first); ``loss`` only for NaN/inf checks."""
    recent_loss = list(loss[-window:])
    if any(not math.isfinite(v) for v in recent_loss):
        return ConvergenceVerdict(ConvergenceStatus.DIVERGING, float("nan"), window,
                                  "The loss became NaN or infinite: training diverged.")
    if len(psnr) < 2 * window:
        return ConvergenceVerdict(ConvergenceStatus.UNKNOWN, float("nan"), window, "Not enough steps to judge yet.")
    last, prev = _mean(psnr[-window:]), _mean(psnr[-2 * window:-window])
    earlier = _mean(psnr[-3 * window:-2 * window]) if len(psnr) >= 3 * window else float("nan")
    gain = last - prev
    if not math.isfinite(gain):
        return ConvergenceVerdict(ConvergenceStatus.UNKNOWN, gain, window, "PSNR is not finite yet.")
    drop = max(prev, earlier if math.isfinite(earlier) else prev) - last
    if drop > diverging_db:
        return ConvergenceVerdict(ConvergenceStatus.DIVERGING, gain, window, f"PSNR fell by {drop:.2f} dB.")
    if gain > improving_db:
        return ConvergenceVerdict(ConvergenceStatus.IMPROVING, gain, window, f"PSNR rose by {gain:.2f} dB.")
    if math.isfinite(earlier) and prev - earlier <= improving_db:
        return ConvergenceVerdict(ConvergenceStatus.CONVERGED, gain, window,
                                  f"PSNR has changed by less than {improving_db} dB over {2 * window} steps.")
    return ConvergenceVerdict(ConvergenceStatus.PLATEAU, gain, window, f"PSNR changed by only {gain:+.2f} dB.")
