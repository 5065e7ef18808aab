"""Mixed precision: the rule (which dtype and whether the loss is scaled, per device, capability and method),
the premises it rests on (float16 needs a loss scaler; a scaler does not reach ``fast``'s grid gradients),
and bfloat16 runs that render what float32 renders (these two need a CPU with native bfloat16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine import load_field, vanilla
from nerf_widgets.engine.fast import FastModel
from nerf_widgets.engine.precision import Precision, bf16_native, choose_precision, device_precision
from nerf_widgets.engine.vanilla import VanillaModel

CPU = torch.device("cpu")
needs_native_bf16 = pytest.mark.skipif(not bf16_native(CPU), reason="this CPU has no native bfloat16 (fp32 is used)")


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


@needs_native_bf16
def test_fast_colour_network_runs_in_bfloat16_and_renders_like_float32(fast_run: tuple[Path, Any]) -> None:
    model = load_field(fast_run[0], device="cpu").model
    full, full_types = _render(model, "off")
    mixed, mixed_types = _render(model, "bf16")
    assert full_types == {torch.float32} and mixed_types == {torch.bfloat16}
    assert mixed.dtype == torch.float32
    assert _render(model, "auto")[1] == {torch.float32}  # the default keeps CPUs in float32 (measured slower)
    diff = (mixed - full).abs()
    assert 0 < float(diff.max()) < 0.02 and float(diff.mean()) < 2e-3


@needs_native_bf16
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


N_RAYS, WIDTH = 2048, 32
T4, V100, P100, GTX1080, A100, RTX3090, H100 = (7, 5), (7, 0), (6, 0), (6, 1), (8, 0), (8, 6), (9, 0)


@pytest.mark.parametrize(("device", "capability", "method", "mode", "cpu_bf16", "dtype", "scaler"), [
    ("cuda", A100, "fast", "auto", False, "bfloat16", False),
    ("cuda", RTX3090, "vanilla", "auto", False, "bfloat16", False),
    ("cuda", H100, "vanilla", "bf16", False, "bfloat16", False),
    ("cuda", T4, "vanilla", "auto", False, "float16", True),  # Colab's free GPU
    ("cuda", V100, "vanilla", "auto", False, "float16", True),
    ("cuda", T4, "fast", "auto", False, "float32", False),  # grid gradients would bypass the scaler
    ("cuda", T4, "vanilla", "bf16", False, "float32", False),  # emulated bfloat16 is slower than float32
    ("cuda", T4, "vanilla", "off", False, "float32", False),
    ("cuda", A100, "fast", "off", False, "float32", False),
    ("cuda", P100, "vanilla", "auto", False, "float32", False),  # no tensor cores
    ("cuda", GTX1080, "vanilla", "auto", False, "float32", False),  # float16 at 1/64 rate
    ("cpu", None, "vanilla", "auto", True, "float32", False),  # measured slower in bfloat16
    ("cpu", None, "fast", "bf16", True, "bfloat16", False),
    ("cpu", None, "fast", "bf16", False, "float32", False),
    ("mps", None, "vanilla", "auto", False, "float32", False),
])
def test_precision_rule(device: str, capability: tuple[int, int] | None, method: str, mode: str, cpu_bf16: bool,
                        dtype: str, scaler: bool) -> None:
    plan = choose_precision(device, capability, method, mode, cpu_bf16)
    assert (plan.dtype, plan.scaler) == (dtype, scaler) and plan.reason


def test_this_cpu_trains_in_float32_by_default_and_autocasts_as_planned() -> None:
    for method in ("fast", "vanilla"):
        assert device_precision(CPU, method) == Precision("float32", False, "CPUs train faster in float32")
    layer = torch.nn.Linear(4, 4)
    with Precision("float16", True, "as on a T4").autocast("cpu"):
        assert layer(torch.ones(2, 4)).dtype == torch.float16
    with device_precision(CPU, "vanilla").autocast("cpu"):
        assert layer(torch.ones(2, 4)).dtype == torch.float32


def _vanilla_grads(model: VanillaModel, plan: Precision, monkeypatch: pytest.MonkeyPatch) -> torch.Tensor:
    """Flat parameter gradients of one batch's loss with the networks run as ``plan`` says (a GradScaler on
    the CPU when it asks for one); gradients are unscaled as the trainer's ``scaler.step`` sees them."""
    monkeypatch.setattr(vanilla, "network_autocast", lambda device, mode, method: plan.autocast(device.type))
    model.zero_grad()
    origins, dirs = _rays(N_RAYS)
    g = torch.Generator().manual_seed(2)
    out = model.render_rays(origins, dirs, torch.ones(3), jitter=torch.rand(N_RAYS, generator=g),
                            generator=torch.Generator().manual_seed(3))
    truth = torch.rand(N_RAYS, 3, generator=g)
    loss = F.mse_loss(out["rgb"], truth) + F.mse_loss(out["rgb_coarse"], truth)
    scaler = torch.amp.GradScaler("cpu", enabled=plan.scaler)
    optimizer = torch.optim.Adam(model.parameters())
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_float16_needs_the_loss_scaler_and_matches_float32_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-sample gradients of a mean photometric loss are ~1e-8..1e-4: in a float16 backward the small ones
    flush to zero; scaled by 2^16 and unscaled in float32 they survive (the T4 plan for vanilla)."""
    torch.manual_seed(0)
    box = torch.tensor([[-1.5] * 3, [1.5] * 3])
    model = VanillaModel(box, True, 0.1, {"width": WIDTH, "depth": 2, "skip": 1, "n_coarse": 8, "n_fine": 8})
    ref = _vanilla_grads(model, Precision("float32", False, ""), monkeypatch)
    bare = _vanilla_grads(model, Precision("float16", False, ""), monkeypatch)
    scaled = _vanilla_grads(model, choose_precision("cuda", T4, "vanilla"), monkeypatch)
    live = ref != 0
    assert float(((bare == 0) & live).float().mean()) > 1e-4  # gradients lost without scaling
    assert float(((scaled == 0) & live).float().mean()) == 0.0
    error = {name: float((g - ref).norm() / ref.norm()) for name, g in (("bare", bare), ("scaled", scaled))}
    assert error["scaled"] < 2e-3 and error["scaled"] * 5 < error["bare"], error


@pytest.mark.parametrize("fused", ["1", "0"])
def test_a_loss_scaler_does_not_reach_fast_grid_gradients(fused: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why ``fast`` stays float32 before Ampere: the scaler unscales (and checks for inf) only the optimiser's
    MLP gradients; the grids' gradients, scattered outside autograd's parameters, stay multiplied by S."""
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", fused)

    def grads(scale: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model = FastModel(torch.tensor([[-1.0] * 3, [1.0] * 3]), True, 0.1, {"res_schedule": [[0, 16]]})
        model.density.table.normal_(0, 2)
        model.update_occupancy()
        optimizer = torch.optim.Adam(model.param_groups(1e-3))
        scaler = torch.amp.GradScaler("cpu", init_scale=scale or 1.0, enabled=scale is not None)
        origins, dirs = _rays(256)
        rgb = model.render_rays(origins * 0.5, dirs, torch.ones(3), torch.full((256,), 0.5))["rgb"]
        scaler.scale(F.mse_loss(rgb, torch.zeros_like(rgb))).backward()
        scaler.unscale_(optimizer)
        return model.mlp[0].weight.grad.clone(), model.density.grad.clone()

    mlp_ref, grid_ref = grads(None)
    mlp, grid = grads(2.0**16)
    assert float(grid_ref.abs().max()) > 0
    torch.testing.assert_close(mlp, mlp_ref, rtol=1e-4, atol=1e-9)  # unscaled by the scaler
    torch.testing.assert_close(grid, grid_ref * 2.0**16, rtol=1e-4, atol=1e-6)  # not unscaled
