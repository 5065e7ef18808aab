"""Convergence status of a run from its PSNR (and loss) series: improving, plateau, converged, diverging.

Batch PSNR is noisy, so windows are compared by their means: the gain of the latest window over the
one before it, in dB. The latest window falling more than ``diverging_db`` below either of the two
before it (or a non-finite loss) is divergence; a gain above ``improving_db`` is improvement;
otherwise a plateau, which becomes "converged" once the previous window was flat too.

Once a run has held-out evaluations, their trend decides instead: batch PSNR over a few dozen steps can look
flat while the model still improves on unseen views (seen on lego: "converged" at step 800 while eval PSNR
rose at every evaluation). With eval points, the latest eval gain above ``improving_db`` is improvement, a
fall beyond ``diverging_db`` divergence, and "converged" needs the last two eval gains flat; batch windows
then only detect divergence.
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
                       improving_db: float = 0.1, diverging_db: float = 0.5,
                       eval_psnr: Sequence[float] = ()) -> ConvergenceVerdict:
    """Judge the last ``3 * window`` values of batch ``psnr`` (dB, oldest first), or the trend of ``eval_psnr``
    (dB per evaluation, oldest first) once there are two; ``loss`` only for NaN/inf checks."""
    recent_loss = list(loss[-window:])
    if any(not math.isfinite(v) for v in recent_loss):
        return ConvergenceVerdict(ConvergenceStatus.DIVERGING, float("nan"), window,
                                  "The loss became NaN or infinite: training diverged.")
    evals = [v for v in eval_psnr if math.isfinite(v)]
    if len(evals) >= 2:
        return _eval_trend(evals, window, improving_db, diverging_db)
    verdict = _batch_trend(psnr, window, improving_db, diverging_db)
    if evals and verdict.status is ConvergenceStatus.CONVERGED:  # wait for the evaluations to agree
        return ConvergenceVerdict(ConvergenceStatus.PLATEAU, verdict.gain_db, window,
                                  f"Batch PSNR changed by only {verdict.gain_db:+.2f} dB; the next evaluation decides.")
    return verdict


def _eval_trend(evals: list[float], window: int, improving_db: float, diverging_db: float) -> ConvergenceVerdict:
    gain = evals[-1] - evals[-2]
    if gain < -diverging_db:
        return ConvergenceVerdict(ConvergenceStatus.DIVERGING, gain, window, f"Eval PSNR fell by {-gain:.2f} dB.")
    if gain > improving_db:
        return ConvergenceVerdict(ConvergenceStatus.IMPROVING, gain, window,
                                  f"Eval PSNR rose by {gain:.2f} dB since the last evaluation.")
    if len(evals) >= 3 and abs(evals[-2] - evals[-3]) <= improving_db:
        return ConvergenceVerdict(ConvergenceStatus.CONVERGED, gain, window,
                                  f"Eval PSNR has changed by less than {improving_db} dB over two evaluations.")
    return ConvergenceVerdict(ConvergenceStatus.PLATEAU, gain, window,
                              f"Eval PSNR changed by only {gain:+.2f} dB since the last evaluation.")


def _batch_trend(psnr: Sequence[float], window: int, improving_db: float, diverging_db: float) -> ConvergenceVerdict:
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
