"""Which path runs where: the numba kernels serve CPU tensors only; CUDA tensors take the PyTorch path, and that
path is whole-batch tensor code (no Python loop per ray or sample), checked here on the CPU by counting calls."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from nerf_widgets.engine import kernels
from nerf_widgets.engine.fast import FastModel
from nerf_widgets.engine.vanilla import VanillaModel


def test_cuda_tensors_never_take_the_kernels() -> None:
    for name in ("cuda", "cuda:0", "cuda:1"):
        assert not kernels.used_for(torch.device(name))
    assert kernels.used_for(torch.device("cpu")) == kernels.available()


def test_kernels_switched_off_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "0")
    assert not kernels.used_for(torch.device("cpu"))
    assert kernels.unavailable_reason() == "turned off by NERF_WIDGETS_KERNELS=0"


def test_a_kernel_load_failure_is_logged_with_its_reason() -> None:
    """A process where numba cannot be imported: the PyTorch path runs and a warning says why (it used to be
    swallowed by ``except Exception``)."""
    script = textwrap.dedent("""
        import logging, sys
        logging.basicConfig(level=logging.WARNING)
        sys.modules["numba"] = None  # an import of numba now raises ImportError
        from nerf_widgets.engine import kernels
        print(kernels.available(), kernels.unavailable_reason(), sep="|")
    """)
    env = {k: v for k, v in os.environ.items() if k != "NERF_WIDGETS_KERNELS"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True,
                          env=env)
    available, reason = done.stdout.strip().splitlines()[-1].split("|")
    assert available == "False" and reason.startswith("numba does not import (")
    assert "WARNING:nerf_widgets.engine.kernels:fused CPU kernels unavailable, using the PyTorch path: numba " \
           "does not import" in done.stderr


class _CountCalls(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _rays(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    origins = F.normalize(torch.randn(n, 3, generator=g), dim=-1) * 3
    return origins, F.normalize(-origins + 0.3 * torch.randn(n, 3, generator=g), dim=-1)


def _step_calls(model: Any, n: int) -> tuple[int, float]:
    """Torch calls of one training step (render, backward, grid update) on ``n`` rays, and its sample count."""
    origins, dirs = _rays(n)
    counter = _CountCalls()
    with counter:
        out = model.render_rays(origins, dirs, torch.ones(3), torch.rand(n, generator=torch.Generator().manual_seed(2)))
        out["rgb"].sum().backward()
        model.grid_step(0.1)
    return counter.calls, float(out["samples"])


def test_the_path_cuda_runs_is_vectorised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same number of torch calls for 32 and 1024 rays (30x the samples): no per-ray or per-sample loop
    in Python. Run on the CPU with the kernels off, which is the code CUDA tensors take."""
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "0")
    torch.manual_seed(0)
    fast = FastModel(torch.tensor([[-1.0] * 3, [1.0] * 3]), True, 0.1, {"res_schedule": [[0, 16]]})
    fast.density.table.normal_(0, 2)
    fast.update_occupancy()
    vanilla = VanillaModel(torch.tensor([[-1.0] * 3, [1.0] * 3]), False, 0.1,
                           {"width": 16, "depth": 2, "skip": 1, "n_coarse": 8, "n_fine": 8})
    unbounded = FastModel(torch.tensor([[-2.0] * 3, [2.0] * 3]), False, 0.1, {"res_schedule": [[0, 16]]})
    unbounded.density.table.normal_(0, 2)  # its proposal sampler (``proposal.march_proposal_torch``)
    unbounded.update_occupancy()
    for model in (fast, unbounded, vanilla):
        (few, few_samples), (many, many_samples) = _step_calls(model, 32), _step_calls(model, 1024)
        assert many_samples > 20 * few_samples > 0
        assert few == many, (type(model).__name__, getattr(model, "bounded", None))
    origins, dirs = _rays(64)  # evaluation renders take the same path without autograd
    with torch.no_grad():
        quiet = fast.render_rays(origins, dirs, torch.ones(3))["rgb"]
    torch.testing.assert_close(quiet, fast.render_rays(origins, dirs, torch.ones(3))["rgb"].detach())
