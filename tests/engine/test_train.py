"""Training on the tiny sphere scene: ``fast`` reaches a PSNR threshold, ``vanilla`` improves, run folder shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nerf_widgets.engine import NullCallbacks, StepInfo, load_field, make_config, train
from nerf_widgets.engine.metrics import psnr


def test_fast_reaches_psnr_threshold_on_held_out_views(fast_run: tuple[Path, Any], tiny_scene: Path) -> None:
    from nerf_widgets.engine.data import load_dataset
    from nerf_widgets.engine.sampler import eval_view

    run, result = fast_run
    assert result.step == 240 and result.reason == "max_steps"
    data = load_dataset(tiny_scene)
    field = load_field(run)
    scores = [psnr(*eval_view(field.model, data, i, None, field.device)) for i in data.splits["test"]]
    assert min(scores) > 20.0, scores


def test_run_folder_has_config_checkpoints_and_metrics(fast_run: tuple[Path, Any]) -> None:
    run, result = fast_run
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["method"] == "fast" and config["scene"]["bounded"] is True
    assert [p.name for p in sorted((run / "checkpoints").glob("*.pt"))] == ["ckpt_00000120.pt", "ckpt_00000240.pt"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = {line["type"] for line in lines}
    assert kinds == {"step", "eval", "checkpoint", "end"}
    evals = [line for line in lines if line["type"] == "eval"]
    assert [e["step"] for e in evals] == [120, 240] and evals[-1]["psnr"] == round(result.last_psnr, 4)


class Recorder(NullCallbacks):
    def __init__(self) -> None:
        self.steps: list[StepInfo] = []

    def on_step(self, info: StepInfo) -> None:
        self.steps.append(info)


def test_vanilla_improves(tiny_scene: Path, tmp_path: Path) -> None:
    # The real architecture and samplers, narrowed (64 wide, 16 + 16 samples) so it runs in seconds.
    from nerf_widgets.engine.data import load_dataset
    from nerf_widgets.engine.sampler import eval_view
    from nerf_widgets.engine.trainer import Trainer

    cfg = make_config("vanilla", "quick", max_steps=50, batch_rays=128, lr=5e-3, warmup_steps=5, eval_every=50,
                      eval_max_side=32, checkpoint_every=0, threads=1, background="white",
                      model={"width": 64, "n_coarse": 16, "n_fine": 16})
    data = load_dataset(tiny_scene)
    trainer = Trainer(data, tmp_path, cfg, None)
    before = psnr(*eval_view(trainer.model, data, data.splits["test"][0], 32, trainer.device))
    result = trainer.run()
    assert result.step == 50 and result.last_psnr is not None
    assert result.last_psnr > before + 1.0, (before, result.last_psnr)


def test_progress_callback_reports_consistent_numbers(tiny_scene: Path, tmp_path: Path) -> None:
    rec = Recorder()
    cfg = make_config("fast", "quick", max_steps=5, batch_rays=128, eval_every=0, checkpoint_every=0, threads=1,
                      model={"res_schedule": [[0, 16]]})
    train(tiny_scene, tmp_path / "run", cfg, rec, resume=False)
    assert [s.step for s in rec.steps] == [1, 2, 3, 4, 5]
    last = rec.steps[-1]
    assert last.max_steps == 5 and last.eta_s == 0.0 and last.rays_per_s > 0 and last.elapsed_s > 0
    assert all(abs(s.rays_per_s - 128 * s.steps_per_s) < 1e-6 * s.rays_per_s for s in rec.steps)
