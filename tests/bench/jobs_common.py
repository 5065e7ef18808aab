"""Shared pieces of the jobs benchmarks: a torch workload shaped like NeRF training (an MLP over 4096
rays x 63 features per step, both cores busy) that honours the engine's callback contract."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

from nerf_widgets.engine.callbacks import EvalInfo, NullCallbacks, StepInfo


def torch_train(data_dir: Path, run_dir: Path, config: dict[str, Any], callbacks: Any = None,
                resume: bool = True) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.manual_seed(0)
    cb = callbacks or NullCallbacks()
    steps = int(config.get("max_steps", 300))
    width = int(config.get("overrides", {}).get("width", 128))
    net = torch.nn.Sequential(torch.nn.Linear(63, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                              torch.nn.ReLU(), torch.nn.Linear(width, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(4096, 63), torch.rand(4096, 4)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        if cb.should_stop():
            break
        loss = torch.nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        elapsed = time.perf_counter() - t0
        value = float(loss.detach())
        psnr = -10 * math.log10(max(value, 1e-10))
        cb.on_step(StepInfo(step, steps, value, psnr, 1e-3, 4096 * step / elapsed, step / elapsed, elapsed,
                            (steps - step) * elapsed / step))
        if step % 100 == 0:
            img = np.zeros((64, 64, 3), np.uint8)
            cb.on_eval(EvalInfo(step, psnr, 0.5, elapsed, img, img, 0.3))
    return {"steps": steps, "seconds": time.perf_counter() - t0}


def passthrough_config(params: dict[str, Any]) -> dict[str, Any]:
    return dict(params)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"median": statistics.median(ordered), "p99": p99, "max": ordered[-1], "n": len(ordered)}


def load() -> float:
    import os

    return os.getloadavg()[0]
