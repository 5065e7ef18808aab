"""``train(data_dir, run_dir, config, callbacks, resume)``: the one training loop every caller uses.

Clock: ``elapsed_s`` counts optimisation steps only (not data loading, evaluation, checkpoints or time
blocked in callbacks), so ``--max-minutes`` and the benchmark measure training time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.callbacks import CallbackList, EvalInfo, StepInfo, TrainCallbacks
from nerf_widgets.engine.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    read_run_config,
    save_checkpoint,
    write_json_atomic,
)
from nerf_widgets.engine.config import TrainConfig, make_config, resolve_device
from nerf_widgets.engine.data import Dataset, apply_region, load_dataset
from nerf_widgets.engine.heap import keep_heap
from nerf_widgets.engine.models import build_model, scene_dict
from nerf_widgets.engine.precision import device_precision
from nerf_widgets.engine.sampler import RaySampler, eval_view
from nerf_widgets.engine.writer import MetricsWriter

__all__ = ["TrainResult", "Trainer", "train"]


@dataclass(frozen=True)
class TrainResult:
    run_dir: str
    step: int
    elapsed_s: float
    reason: str  # max_steps | max_minutes | early_stop | stopped
    last_psnr: float | None
    checkpoint: str
    poses: dict[str, float] | None = None  # how far pose refinement moved the cameras (PoseRefiner.summary)


def view_depths(data: Dataset) -> tuple[float, float] | None:
    """The training views' known content depths (near, far) in the model frame (LLFF files give them per
    frame), or None."""
    cams = [data.cameras[i] for i in data.split("train")]
    nears, fars = [c.near for c in cams if c.near], [c.far for c in cams if c.far]
    if not nears or not fars:
        return None
    scale = float(np.linalg.norm(data.transform[:3, 0]))
    return min(nears) * scale, max(fars) * scale


def lr_factor(step: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Linear warm-up over ``warmup_steps``, then exponential decay to ``lr_final_ratio`` at the end of the
    budget: progress is the larger of step / max_steps and elapsed / max_minutes (time budgets decay on time)."""
    warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
    progress = step / max(cfg.max_steps, 1)
    if cfg.max_minutes:
        progress = max(progress, elapsed_s / (cfg.max_minutes * 60.0))
    return warm * cfg.lr_final_ratio ** min(progress, 1.0)


class Trainer:
    """State of one run; ``run()`` trains until a budget, early stop or ``should_stop``."""

    def __init__(self, data: Dataset, run_dir: Path, cfg: TrainConfig, callbacks: TrainCallbacks | None) -> None:
        self.data, self.run_dir, self.cfg = data, run_dir, cfg
        self.clock = time.perf_counter  # the benchmark may count process CPU time instead (a shared machine)
        self.device = resolve_device(cfg.device, cfg.threads)
        if self.device.type == "cpu":
            keep_heap()
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg, scene_dict(data))
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.param_groups(cfg.lr), eps=1e-15, foreach=True)
        # float16 (Volta/Turing GPUs, vanilla only) needs loss scaling; elsewhere the scaler passes through
        self.precision = device_precision(self.device, cfg.method, str(cfg.model.get("mixed_precision", "auto")))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.scaler)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.sampler = RaySampler(data, data.split("train"), cfg.background, self.device)
        self.writer = MetricsWriter(run_dir / "metrics.jsonl")
        self.callbacks = CallbackList(self.writer, callbacks)
        self.step, self.elapsed, self.factor = 0, 0.0, lr_factor(0, cfg)
        self.best_psnr, self.evals_since_best = -math.inf, 0
        self.last_psnr: float | None = None
        if data.has_alpha and data.bounded and hasattr(self.model, "carve"):
            masks = self.sampler.images[..., 3] > 127
            self.model.carve(self.sampler.c2w, self.sampler.intr, masks)
        if not data.bounded and hasattr(self.model, "fit_views"):
            self.model.fit_views(self.sampler.c2w, self.sampler.intr, self.sampler.images.shape[1:3],
                                 view_depths(data))
        self.model.warm_up()

    # ---- checkpoint state -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"step": self.step, "elapsed_s": self.elapsed, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": {"lr_factor": self.factor},
                "scaler": self.scaler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "sampler": self.generator.get_state()},
                "best_psnr": self.best_psnr, "evals_since_best": self.evals_since_best, "last_psnr": self.last_psnr,
                "config": self.cfg.to_json(), "scene": scene_dict(self.data)}

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.factor = float(state["scheduler"]["lr_factor"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["rng"]["sampler"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed_s"])
        self.best_psnr, self.evals_since_best = float(state["best_psnr"]), int(state["evals_since_best"])
        self.last_psnr = state.get("last_psnr")

    def save(self) -> Path:
        path = save_checkpoint(self.run_dir, self.step, self.state())
        self.callbacks.on_checkpoint(self.step, str(path))
        return path

    # ---- one step -----------------------------------------------------------------------------------
    def train_step(self) -> tuple[float, int]:
        """One optimiser step (``grad_accum`` micro-batches); returns (mean MSE, rays used)."""
        cfg = self.cfg
        self.model.train()
        self.model.before_step(self.step)
        total = 0.0
        for _ in range(cfg.grad_accum):
            batch = self.sampler.sample(cfg.batch_rays, self.generator)
            out = self.model.render_rays(batch["origins"], batch["dirs"], batch["background"],
                                         jitter=torch.rand(cfg.batch_rays, generator=self.generator).to(self.device),
                                         image=batch["image"])
            loss_total, mse = self.model.loss(out, batch)
            self.scaler.scale(loss_total / cfg.grad_accum).backward()
            total += float(mse) / cfg.grad_accum
        for group in self.optimizer.param_groups:
            group["lr"] = group.get("base_lr", cfg.lr) * self.factor
        self.scaler.step(self.optimizer)  # skipped when a scaled gradient overflowed
        self.scaler.update()
        self.model.grid_step(cfg.grid_lr * self.factor)
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total, cfg.batch_rays * cfg.grad_accum

    # ---- loop -----------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, reason = self.cfg, "max_steps"
        recent: list[float] = []
        budget_s = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
        while self.step < cfg.max_steps:
            if self.callbacks.should_stop():
                reason = "stopped"
                break
            t0 = self.clock()
            mse, rays = self.train_step()
            dt = self.clock() - t0
            self.elapsed += dt
            self.factor = lr_factor(self.step, cfg, self.elapsed)
            recent = (recent + [dt])[-20:]
            self._report(mse, rays, sum(recent) / len(recent), budget_s)
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self._evaluate():
                reason = "early_stop"
                break
            if self.elapsed >= budget_s:
                reason = "max_minutes"
                break
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save()
        if self.last_psnr is None or (cfg.eval_every and self.step % cfg.eval_every):
            self._evaluate()
        path = self.save()
        refiner = getattr(self.model, "poses", None)
        poses = refiner.summary() if refiner is not None and refiner.active else None
        end = {"type": "end", "step": self.step, "reason": reason, "elapsed_s": round(self.elapsed, 3)}
        self.writer.write({**end, "poses": poses} if poses else end)
        return TrainResult(str(self.run_dir), self.step, self.elapsed, reason, self.last_psnr, str(path), poses)

    def _report(self, mse: float, rays: int, step_s: float, budget_s: float) -> None:
        eta = min((self.cfg.max_steps - self.step) * step_s, max(budget_s - self.elapsed, 0.0))
        psnr = -10.0 * math.log10(max(mse, 1e-10))
        self.callbacks.on_step(StepInfo(
            step=self.step, max_steps=self.cfg.max_steps, loss=mse, psnr=psnr, lr=self.cfg.lr * self.factor,
            rays_per_s=rays / step_s, steps_per_s=1.0 / step_s, elapsed_s=self.elapsed, eta_s=eta))

    def _evaluate(self) -> bool:
        """Evaluate held-out views; returns True when early stopping triggers."""
        from nerf_widgets.engine.metrics import psnr, ssim

        views = self.data.split("test")[: max(self.cfg.eval_views, 1)]
        scores = []
        for i in views:
            rendered, gt = eval_view(self.model, self.data, i, self.cfg.eval_max_side, self.device)
            p, s = float(psnr(rendered, gt)), float(ssim(rendered, gt))
            scores.append(p)
            self.callbacks.on_eval(EvalInfo(step=self.step, psnr=p, ssim=s, elapsed_s=self.elapsed,
                                            rendered=(rendered * 255 + 0.5).astype("uint8"),
                                            ground_truth=(gt * 255 + 0.5).astype("uint8")))
        self.last_psnr = sum(scores) / len(scores)
        if self.last_psnr > self.best_psnr:
            self.best_psnr, self.evals_since_best = self.last_psnr, 0
            return False
        self.evals_since_best += 1
        return bool(self.cfg.early_stop_window) and self.evals_since_best >= self.cfg.early_stop_window


def train(data_dir: str | Path, run_dir: str | Path, config: TrainConfig | None = None,
          callbacks: TrainCallbacks | None = None, resume: bool = True) -> TrainResult:
    """Train (or continue) the run in ``run_dir`` on the posed images in ``data_dir``.

    With ``resume`` and a checkpoint present, the run continues exactly where it stopped (model,
    optimiser, scheduler, step, RNG); only the budgets of ``config`` (max_steps / max_minutes) and its device
    apply (a run trained on a GPU may continue on the CPU, and the other way round).
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt = latest_checkpoint(run) if resume else None
    cfg = config or make_config()
    if ckpt is not None:
        stored = TrainConfig.from_json(read_run_config(run)["config"])
        stored.max_steps, stored.max_minutes, stored.device = cfg.max_steps, cfg.max_minutes, cfg.device
        cfg = stored
    data = apply_region(load_dataset(data_dir), cfg.region)  # the stored region again on resume: same frame
    if not data.split("train"):
        raise ValidationError(f"{data_dir} has no training frames")
    trainer = Trainer(data, run, cfg, callbacks)
    write_json_atomic(run / "config.json", {"config": cfg.to_json(), "scene": scene_dict(data),
                                            "data_dir": str(Path(data_dir).resolve())})
    if ckpt is not None:
        trainer.restore(load_checkpoint(ckpt))
    return trainer.run()
