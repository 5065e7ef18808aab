"""A stand-in for ``engine.train`` that honours the engine's callback contract exactly.

Used to test the training wiring (lifecycle, pause in ``on_step``, ``should_stop``, checkpoints,
resume) without the cost of real training; the real engine has its own test with a tiny scene.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.engine.callbacks import EvalInfo, NullCallbacks, StepInfo
from nerf_widgets.engine.checkpoint import checkpoint_name, checkpoint_step, latest_checkpoint


def fake_train(data_dir: Path, run_dir: Path, config: dict[str, Any], callbacks: Any = None,
               resume: bool = True) -> dict[str, Any]:
    cb = callbacks or NullCallbacks()
    ckpts = Path(run_dir) / "checkpoints"
    ckpts.mkdir(parents=True, exist_ok=True)
    last = latest_checkpoint(run_dir) if resume else None
    start = checkpoint_step(last) if last is not None else 0
    max_steps = int(config.get("max_steps", 200))
    if config.get("overrides", {}).get("fail_at") == start + 1:
        raise RuntimeError("the fake trainer was told to fail")
    sleep, t0 = float(config.get("overrides", {}).get("sleep", 0.002)), time.monotonic()
    step = start
    for step in range(start + 1, max_steps + 1):
        if cb.should_stop():
            break
        time.sleep(sleep)
        psnr = 12 + 15 * (1 - math.exp(-step / 80))
        elapsed = time.monotonic() - t0
        cb.on_step(StepInfo(step, max_steps, 10 ** (-psnr / 10), psnr, 1e-2, 4096 / sleep, 1 / sleep, elapsed,
                            (max_steps - step) * sleep))
        if step % 20 == 0:
            path = ckpts / checkpoint_name(step)  # the engine's naming; the contents are not a model
            path.write_text(str(step))
            cb.on_checkpoint(step, str(path))
        if step % 50 == 0:
            img = np.full((8, 8, 3), step % 255, np.uint8)
            cb.on_eval(EvalInfo(step, psnr - 1, 0.8, elapsed, img, img, 0.2))
    return {"final_step": step, "resumed_from": start}


def fake_config(params: dict[str, Any]) -> dict[str, Any]:
    return dict(params)


def torch_busy_train(data_dir: Path, run_dir: Path, config: dict[str, Any], callbacks: Any = None,
                     resume: bool = True) -> dict[str, Any]:
    """Real torch work on all cores (an MLP over 4096 rays per step) with the engine's callbacks; like the
    engine, it saves a checkpoint (the engine's naming and format) when it is told to stop."""
    import torch

    from nerf_widgets.engine.checkpoint import save_checkpoint

    cb = callbacks or NullCallbacks()
    steps = int(config.get("max_steps", 100))
    net = torch.nn.Sequential(torch.nn.Linear(63, 128), torch.nn.ReLU(), torch.nn.Linear(128, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(4096, 63), torch.rand(4096, 4)
    t0 = time.monotonic()
    for step in range(1, steps + 1):
        if cb.should_stop():
            path = save_checkpoint(run_dir, step - 1, {"step": step - 1, "model": net.state_dict()})
            cb.on_checkpoint(step - 1, str(path))
            break
        loss = torch.nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = float(loss.detach())
        elapsed = time.monotonic() - t0
        cb.on_step(StepInfo(step, steps, value, -10 * math.log10(value), 1e-3, 4096 * step / elapsed,
                            step / elapsed, elapsed, 0.0))
    return {"final_step": steps}
