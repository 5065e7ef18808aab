"""The Ray benchmark's workload, importable by the cluster's workers (``jobs_common.torch_train``'s shape),
each step stamped with the worker's ``time.time()`` in the ETA field to time its trip to the notebook's bus."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from nerf_widgets.engine.callbacks import NullCallbacks, StepInfo


def stamped_train(data_dir: Path, run_dir: Path, config: dict[str, Any], callbacks: Any = None,
                  resume: bool = True) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    cb = callbacks or NullCallbacks()
    steps = int(config.get("max_steps", 300))
    net = torch.nn.Sequential(torch.nn.Linear(63, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                              torch.nn.ReLU(), torch.nn.Linear(128, 4))
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
        cb.on_step(StepInfo(step, steps, value, -10 * math.log10(max(value, 1e-10)), 1e-3, 4096 * step / elapsed,
                            step / elapsed, elapsed, time.time()))
    return {"steps": steps, "seconds": time.perf_counter() - t0, "threads": torch.get_num_threads()}
