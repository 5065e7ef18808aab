"""Convergence status and alert rules on made-up but realistic inputs."""

from __future__ import annotations

import math
import random
import time

from nerf_widgets.jobs import AlertRules, AlertThresholds, ConvergenceStatus, assess_convergence
from nerf_widgets.jobs.alerts import JobHealth
from nerf_widgets.sysmetrics import GpuSample, SystemSample

GiB = 1024**3


def noisy(values: list[float], sigma: float = 0.3, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [v + rng.gauss(0, sigma) for v in values]


def test_convergence_statuses() -> None:
    rising = noisy([15 + 10 * (1 - math.exp(-s / 300)) for s in range(300)])
    flat = noisy([25.0] * 300)
    plateau_then = noisy([20 + 0.02 * s for s in range(150)] + [23.0] * 150)
    falling = noisy([25.0] * 200 + [22.0] * 100)
    assert assess_convergence(rising[:40]).status is ConvergenceStatus.UNKNOWN
    assert assess_convergence(rising).status is ConvergenceStatus.IMPROVING
    assert assess_convergence(flat).status is ConvergenceStatus.CONVERGED
    assert assess_convergence(plateau_then[:250], window=50).status is ConvergenceStatus.PLATEAU
    assert assess_convergence(falling).status is ConvergenceStatus.DIVERGING
    assert assess_convergence(flat, [0.1, float("nan")]).status is ConvergenceStatus.DIVERGING


def test_convergence_follows_the_eval_trend_once_there_are_evals() -> None:
    """Batch PSNR flat over 150 steps (the batch rule says converged) while held-out PSNR still rises: improving."""
    flat = noisy([25.0] * 300)
    assert assess_convergence(flat, eval_psnr=[20.1, 22.4]).status is ConvergenceStatus.IMPROVING
    assert assess_convergence(flat, eval_psnr=[22.0]).status is ConvergenceStatus.PLATEAU  # one eval: wait
    assert assess_convergence(flat, eval_psnr=[22.0, 22.05]).status is ConvergenceStatus.PLATEAU
    assert assess_convergence(flat, eval_psnr=[22.0, 22.05, 22.08]).status is ConvergenceStatus.CONVERGED
    assert assess_convergence(flat, eval_psnr=[24.0, 22.0]).status is ConvergenceStatus.DIVERGING
    assert assess_convergence(flat, [0.1, float("nan")], eval_psnr=[20.0, 23.0]).status is ConvergenceStatus.DIVERGING
    verdict = assess_convergence(flat, eval_psnr=[20.1, 22.4])
    assert "Eval PSNR rose by 2.30 dB" in verdict.message


def _sample(mem_pct: float = 40.0, disk_free: int = 100 * GiB, gpu_used: int = 0) -> SystemSample:
    gpus = [GpuSample(0, "fake", gpu_used, 8 * GiB, 50.0, 60.0)] if gpu_used else []
    return SystemSample(time.time(), 10.0, 1 << 30, 20.0, 2, 24 * GiB, int(24 * GiB * (1 - mem_pct / 100)), mem_pct,
                        disk_free, 500 * GiB, gpus)


def test_alerts_fire_once_per_condition_and_rearm() -> None:
    rules = AlertRules(AlertThresholds(stall_s=60, no_gain_steps=1000))
    ok = JobHealth(running=True, step=100, seconds_since_step=1.0, best_psnr_step=90)
    assert rules.evaluate(_sample(), ok) == []
    hot = rules.evaluate(_sample(mem_pct=95, disk_free=GiB // 2, gpu_used=int(7.9 * GiB)),
                         JobHealth(running=True, step=2000, seconds_since_step=90, best_psnr_step=500))
    by_code = {a.code: a for a in hot}
    assert set(by_code) == {"memory_high", "disk_low", "gpu_memory_high", "stalled", "no_psnr_gain"}
    assert by_code["memory_high"].severity == "warning" and "95%" in by_code["memory_high"].message
    assert "GiB free" in by_code["disk_low"].message and by_code["stalled"].time > 0
    again = rules.evaluate(_sample(mem_pct=95), JobHealth(running=True, step=2001, seconds_since_step=95,
                                                          best_psnr_step=500))
    assert again == []  # still true: not repeated
    rules.evaluate(_sample(), ok)  # cleared
    assert [a.code for a in rules.evaluate(_sample(mem_pct=98), ok)] == ["memory_high"]


def test_paused_job_is_not_stalled() -> None:
    rules = AlertRules(AlertThresholds(stall_s=1))
    assert rules.evaluate(None, JobHealth(running=False, step=5, seconds_since_step=100, best_psnr_step=5)) == []
