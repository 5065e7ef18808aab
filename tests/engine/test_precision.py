"""Mixed precision: networks run in bfloat16 where the device multiplies it natively, and render what
float32 renders (the colour MLP of ``fast``, both MLPs of ``vanilla``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine import load_field
from nerf_widgets.engine.config import bf16_native
from nerf_widgets.engine.fast import FastModel
from nerf_widgets.engine.vanilla import VanillaModel

CPU = torch.device("cpu")
pytestmark = pytest.mark.skipif(not bf16_native(CPU), reason="this CPU has no native bfloat16 (fp32 is used)")


def _rays(n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays from a ring of eyes at radius 4 towards points near the origin (the spheres of the test scene)."""
    g = torch.Generator().manual_seed(0)
    az = torch.rand(n, generator=g) * 6.283
    eye = torch.stack([4 * az.cos(), 4 * az.sin(), torch.rand(n, generator=g) * 2 - 0.5], -1)
    target = (torch.rand(n, 3, generator=g) - 0.5) * 1.2
    return eye, F.normalize(target - eye, dim=-1)


def _render(model: Any, precision: str) -> tuple[torch.Tensor, set[torch.dtype]]:
    """Colour of the test rays and the dtypes the model's Linear layers produced."""
    model.opt["mixed_precision"] = precision
    seen: set[torch.dtype] = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
             for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            origins, dirs = _rays()
            rgb = model.render_rays(origins, dirs, torch.ones(3))["rgb"]
    finally:
        for h in hooks:
            h.remove()
    return rgb, seen


def test_fast_colour_network_runs_in_bfloat16_and_renders_like_float32(fast_run: tuple[Path, Any]) -> None:
    model = load_field(fast_run[0], device="cpu").model
    full, full_types = _render(model, "off")
    mixed, mixed_types = _render(model, "bf16")
    assert full_types == {torch.float32} and mixed_types == {torch.bfloat16}
    assert mixed.dtype == torch.float32
    assert _render(model, "auto")[1] == {torch.float32}  # the default keeps CPUs in float32 (measured slower)
    diff = (mixed - full).abs()
    assert 0 < float(diff.max()) < 0.02 and float(diff.mean()) < 2e-3


def test_vanilla_networks_run_in_bfloat16_and_train(tmp_path: Path) -> None:
    torch.manual_seed(0)
    box = torch.tensor([[-1.5] * 3, [1.5] * 3])
    model = VanillaModel(box, True, 0.1, {"width": 32, "depth": 2, "skip": 1, "n_coarse": 16, "n_fine": 16})
    full, full_types = _render(model, "off")
    mixed, mixed_types = _render(model, "bf16")
    assert full_types == {torch.float32} and mixed_types == {torch.bfloat16}
    diff = (mixed - full).abs()
    assert 0 < float(diff.max()) < 0.02
    # gradients reach every float32 parameter through the bfloat16 forward
    origins, dirs = _rays(64)
    out = model.render_rays(origins, dirs, torch.ones(3), jitter=torch.rand(64))
    (out["rgb"].sum() + out["rgb_coarse"].sum()).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and bool(p.grad.abs().sum() > 0)
               for p in model.parameters())


@pytest.mark.parametrize("build", [FastModel, VanillaModel])
def test_unknown_precision_mode_is_refused_when_the_model_is_built(build: Any) -> None:
    box = torch.tensor([[-1.0] * 3, [1.0] * 3])
    with pytest.raises(ValidationError, match="mixed_precision must be auto, bf16 or off, not 'fp16'"):
        build(box, True, 0.1, {"mixed_precision": "fp16"})
