"""RUN/metrics.jsonl writer: a ``TrainCallbacks`` that appends one JSON object per event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nerf_widgets.engine.callbacks import EvalInfo, NullCallbacks, StepInfo

__all__ = ["MetricsWriter"]


class MetricsWriter(NullCallbacks):
    """Appends step lines every ``every`` steps plus every evaluation and checkpoint (flushed per line)."""

    def __init__(self, path: Path, every: int = 10) -> None:
        self.path, self.every = path, every

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def on_step(self, info: StepInfo) -> None:
        if info.step % self.every == 0 or info.step == 1:
            self.write({"type": "step", "step": info.step, "loss": info.loss, "psnr": round(info.psnr, 4),
                        "lr": info.lr, "rays_per_s": round(info.rays_per_s, 1), "elapsed_s": round(info.elapsed_s, 3)})

    def on_eval(self, info: EvalInfo) -> None:
        self.write({"type": "eval", "step": info.step, "psnr": round(info.psnr, 4), "ssim": round(info.ssim, 5),
                    "lpips": info.lpips, "elapsed_s": round(info.elapsed_s, 3)})

    def on_checkpoint(self, step: int, path: str) -> None:
        self.write({"type": "checkpoint", "step": step, "path": path})
