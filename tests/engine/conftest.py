"""Engine fixtures: the tiny analytic sphere scene on disk and one short ``fast`` run shared by several tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.engine.engine_scene import make_scene

# Small enough for a few-second training run on 1 thread; same code paths as the real settings.
TINY_FAST: dict[str, Any] = {"res_schedule": [[0, 24], [80, 40]], "occ_every": 8}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("spheres"))


@pytest.fixture(scope="session")
def fast_run(tiny_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from nerf_widgets.engine import make_config, train

    torch.set_num_threads(1)
    cfg = make_config("fast", "quick", max_steps=240, batch_rays=1024, eval_every=120, eval_max_side=64,
                      checkpoint_every=120, threads=1, model=TINY_FAST)
    run = tmp_path_factory.mktemp("run") / "fast"
    return run, train(tiny_scene, run, cfg, resume=False)
