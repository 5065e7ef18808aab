"""Training on a CUDA device (tests marked ``gpu`` run only where PyTorch sees one), and what of it the CPU can
check: a checkpointed run continues on the device asked for now, and the CPU trains without loss scaling."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from nerf_widgets.engine import load_field, make_config, train
from nerf_widgets.engine.checkpoint import latest_checkpoint
from nerf_widgets.engine.data import load_dataset
from nerf_widgets.engine.precision import device_precision
from nerf_widgets.engine.trainer import Trainer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _fast(device: str, max_steps: int) -> Any:
    return make_config("fast", "quick", max_steps=max_steps, max_minutes=0, batch_rays=512, eval_every=max_steps,
                       eval_max_side=32, checkpoint_every=max_steps, device=device, threads=1,
                       model={"res_schedule": [[0, 16], [6, 24]], "occ_every": 2})


def test_a_checkpointed_run_continues_on_the_device_asked_for_now(tiny_scene: Path, tmp_path: Path) -> None:
    first = train(tiny_scene, tmp_path / "run", _fast("cpu", 4), resume=False)
    again = train(tiny_scene, tmp_path / "run", _fast("auto", 6), resume=True)
    assert (first.step, again.step) == (4, 6)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["device"] == "auto"
    trainer = Trainer(load_dataset(tiny_scene), tmp_path / "cpu", _fast("cpu", 1), None)
    assert trainer.precision.dtype == "float32" and not trainer.scaler.is_enabled()
    assert trainer.state()["scaler"] == {}


def test_the_path_cuda_takes_trains_end_to_end(tiny_scene: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels off, ``fast`` runs the code CUDA tensors run: carving, a resolution change, checkpoints,
    evaluation renders and exports' no-grad queries (on the CPU, where this machine can run it)."""
    monkeypatch.setenv("NERF_WIDGETS_KERNELS", "0")
    result = train(tiny_scene, tmp_path / "run", _fast("cpu", 10), resume=False)
    assert result.step == 10 and result.last_psnr is not None and math.isfinite(result.last_psnr)
    field = load_field(tmp_path / "run", device="cpu")
    assert field.model.res == 24 and bool(torch.isfinite(field.density(torch.rand(64, 3) * 2 - 1)).all())


def test_a_run_trained_on_a_gpu_opens_where_there_is_none(tiny_scene: Path, tmp_path: Path) -> None:
    """Exports and previews load with ``auto``: the device visible now, not the one the run was trained on."""
    train(tiny_scene, tmp_path / "run", _fast("cpu", 2), resume=False)
    ckpt = latest_checkpoint(tmp_path / "run")
    assert ckpt is not None
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state["config"]["device"] = "cuda:0"  # as a GPU job writes it
    torch.save(state, ckpt)
    field = load_field(tmp_path / "run")
    assert field.device == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    assert load_field(tmp_path / "run", device="cpu").device == torch.device("cpu")


def _off_device(model: torch.nn.Module, device_type: str) -> dict[str, str]:
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    return {name: t.device.type for name, t in tensors.items() if t.device.type != device_type}


@pytest.mark.gpu
def test_fast_trains_on_cuda_through_carving_and_a_resolution_change(tiny_scene: Path, tmp_path: Path) -> None:
    trainer = Trainer(load_dataset(tiny_scene), tmp_path / "t", _fast("cuda", 8), None)
    assert trainer.device == torch.device("cuda:0") and not trainer.scaler.is_enabled()  # fast: never scaled
    losses = [trainer.train_step()[0] for _ in range(8)]
    assert trainer.model.res == 24 and all(math.isfinite(x) for x in losses)
    assert _off_device(trainer.model, "cuda") == {}  # grids, optimiser moments, occupancy: all moved
    result = train(tiny_scene, tmp_path / "run", _fast("cuda", 40), resume=False)
    assert result.step == 40 and result.last_psnr is not None and result.last_psnr > 12
    cont = train(tiny_scene, tmp_path / "run", _fast("cpu", 42), resume=True)  # a GPU run continues on the CPU
    assert cont.step == 42
    field = load_field(tmp_path / "run", device="cuda")
    pts = torch.rand(64, 3) * 2 - 1
    assert field.density(pts).device.type == "cpu" and bool(torch.isfinite(field.density(pts)).all())


@pytest.mark.gpu
def test_vanilla_trains_on_cuda_in_the_planned_precision(tiny_scene: Path, tmp_path: Path) -> None:
    cfg = make_config("vanilla", "quick", max_steps=20, max_minutes=0, batch_rays=256, eval_every=0,
                      checkpoint_every=0, device="cuda", model={"width": 64, "n_coarse": 16, "n_fine": 16})
    plan = device_precision(torch.device("cuda:0"), "vanilla")
    capability = torch.cuda.get_device_capability(0)
    assert plan.scaler == ((7, 0) <= capability < (8, 0))
    trainer = Trainer(load_dataset(tiny_scene), tmp_path / "run", cfg, None)
    assert trainer.scaler.is_enabled() == plan.scaler
    seen: set[torch.dtype] = set()
    for m in trainer.model.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    losses = [trainer.train_step()[0] for _ in range(20)]
    assert seen == {DTYPES[plan.dtype]} and all(math.isfinite(x) for x in losses)
    assert all(p.dtype == torch.float32 and p.device.type == "cuda" for p in trainer.model.parameters())
    if plan.scaler:
        assert trainer.state()["scaler"]["scale"] > 0
