"""Checkpoints: atomic files, load_field round trip, and resume == uninterrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nerf_widgets.engine import NullCallbacks, StepInfo, load_field, make_config, train
from nerf_widgets.engine.checkpoint import latest_checkpoint, load_checkpoint


class StopAfter(NullCallbacks):
    def __init__(self, n: int | None = None) -> None:
        self.n, self.losses = n, []  # type: ignore[var-annotated]

    def on_step(self, info: StepInfo) -> None:
        self.losses.append(info.loss)

    def should_stop(self) -> bool:
        return self.n is not None and len(self.losses) >= self.n


def _cfg(method: str) -> Any:
    model = {"res_schedule": [[0, 16], [4, 24]], "occ_every": 2} if method == "fast" else \
        {"width": 32, "n_coarse": 8, "n_fine": 8}
    # max_minutes=0: a step budget only. Under a time budget the learning rate decays with wall-clock time,
    # which no two runs share.
    return make_config(method, "quick", max_steps=8, max_minutes=0, batch_rays=128, eval_every=0, checkpoint_every=0,
                       threads=1, model=model)


def _resume_matches(method: str, scene: Path, tmp: Path) -> None:
    full = StopAfter()
    train(scene, tmp / "a", _cfg(method), full, resume=False)
    part = StopAfter(5)
    first = train(scene, tmp / "b", _cfg(method), part, resume=False)
    assert first.reason == "stopped" and first.step == 5
    rest = StopAfter()
    second = train(scene, tmp / "b", _cfg(method), rest, resume=True)
    assert second.step == 8
    assert part.losses + rest.losses == full.losses  # exact: same batches, same updates
    a = load_checkpoint(latest_checkpoint(tmp / "a"))["model"]  # type: ignore[arg-type]
    b = load_checkpoint(latest_checkpoint(tmp / "b"))["model"]  # type: ignore[arg-type]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_equals_uninterrupted_fast(tiny_scene: Path, tmp_path: Path) -> None:
    # the stop falls after the grid resolution change at step 4, so resized grids are restored too
    _resume_matches("fast", tiny_scene, tmp_path)


def test_resume_equals_uninterrupted_vanilla(tiny_scene: Path, tmp_path: Path) -> None:
    _resume_matches("vanilla", tiny_scene, tmp_path)


def test_load_field_round_trip(fast_run: tuple[Path, Any]) -> None:
    run, _ = fast_run
    field = load_field(run)
    assert field is load_field(run)  # cached
    assert field.aabb.shape == (2, 3)
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.4], [5.0, 5.0, 5.0]])
    dens = field.density(pts)
    assert dens.shape == (3,) and dens[0] > 10 * max(float(dens[1]), 1e-3) and dens[2] == 0
    colour = field.color(pts[:1], torch.tensor([[1.0, 0.0, 0.0]]))
    assert colour.shape == (1, 3) and colour[0, 0] > colour[0, 1] and colour[0, 0] > colour[0, 2]  # red sphere


def test_no_temp_files_left(fast_run: tuple[Path, Any]) -> None:
    run, _ = fast_run
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
