"""Training hooks: the only way the job system, widgets and CLI observe (and pause or stop) training.

The trainer calls ``on_step`` after every optimisation step; a callback that blocks there pauses
training (the clock used for ``--max-minutes`` keeps running only while steps run). ``should_stop`` is
polled once per step, so cancellation is honoured within one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["CallbackList", "EvalInfo", "NullCallbacks", "StepInfo", "TrainCallbacks"]


@dataclass(frozen=True)
class StepInfo:
    """Progress after one optimisation step (``step`` counts from 1)."""

    step: int
    max_steps: int
    loss: float
    psnr: float  # of the training batch, dB
    lr: float
    rays_per_s: float
    steps_per_s: float
    elapsed_s: float  # training time only (paused time and evaluations excluded)
    eta_s: float  # estimated seconds to the step or time budget, whichever is sooner


@dataclass(frozen=True)
class EvalInfo:
    """Metrics on a held-out view; ``rendered`` / ``ground_truth`` are [H, W, 3] uint8 arrays."""

    step: int
    psnr: float
    ssim: float
    elapsed_s: float
    rendered: Any = field(repr=False)
    ground_truth: Any = field(repr=False)
    lpips: float | None = None


@runtime_checkable
class TrainCallbacks(Protocol):
    """What the trainer calls; implement any subset by subclassing ``NullCallbacks``."""

    def on_step(self, info: StepInfo) -> None: ...

    def on_eval(self, info: EvalInfo) -> None: ...

    def on_checkpoint(self, step: int, path: str) -> None: ...

    def should_stop(self) -> bool: ...


class NullCallbacks:
    """No-op base class: override only the hooks you need."""

    def on_step(self, info: StepInfo) -> None:
        return None

    def on_eval(self, info: EvalInfo) -> None:
        return None

    def on_checkpoint(self, step: int, path: str) -> None:
        return None

    def should_stop(self) -> bool:
        return False


class CallbackList(NullCallbacks):
    """Fan one trainer event out to several callbacks (e.g. the metrics.jsonl writer and a job's)."""

    def __init__(self, *callbacks: TrainCallbacks | None) -> None:
        self.callbacks = [c for c in callbacks if c is not None]

    def on_step(self, info: StepInfo) -> None:
        for c in self.callbacks:
            c.on_step(info)

    def on_eval(self, info: EvalInfo) -> None:
        for c in self.callbacks:
            c.on_eval(info)

    def on_checkpoint(self, step: int, path: str) -> None:
        for c in self.callbacks:
            c.on_checkpoint(step, path)

    def should_stop(self) -> bool:
        return any(c.should_stop() for c in self.callbacks)
