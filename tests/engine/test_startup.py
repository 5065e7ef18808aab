"""What happens before the training clock starts: space carving from masks and compiling the CPU kernels."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nerf_widgets.engine import kernels, make_config
from nerf_widgets.engine.data import load_dataset
from nerf_widgets.engine.fast import dilate
from nerf_widgets.engine.trainer import Trainer


def test_separable_dilation_equals_the_square_max_pool() -> None:
    mask = torch.rand(61, 47, generator=torch.Generator().manual_seed(0)) > 0.97
    for rad in (1, 4, 9):
        square = F.max_pool2d(mask[None, None].float(), 2 * rad + 1, stride=1, padding=rad)[0, 0] > 0
        assert torch.equal(dilate(mask, rad), square)
        assert int(square.sum()) > int(mask.sum())


def test_carving_empties_space_outside_the_masks_and_keeps_the_objects(tiny_scene: Path, tmp_path: Path) -> None:
    cfg = make_config("fast", "quick", max_steps=1, eval_every=0, checkpoint_every=0)
    trainer = Trainer(load_dataset(tiny_scene), tmp_path / "run", cfg, None)
    model = trainer.model
    empty = float(model.sigma(torch.tensor(-20.0)))
    fresh = float(model.sigma(torch.tensor(0.0)))
    table = model.density.table[:, 0]
    carved = table == -20.0
    # the spheres fill a small part of the box: most corners go, but not all
    assert 0.5 < float(carved.float().mean()) < 0.99
    r = model.res
    axis = torch.linspace(0, 1, r)
    unit = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    pts = model.aabb[0] + unit * (model.aabb[1] - model.aabb[0])
    centre = (pts - pts.mean(0)).norm(dim=1).argmin()  # the corner nearest the box centre lies in a sphere
    assert not bool(carved[centre]) and float(model.query_density(pts[centre][None])[0]) == pytest.approx(fresh, rel=1e-4)
    assert bool(carved[0]) and float(model.query_density(pts[:1])[0]) == pytest.approx(empty, rel=1e-3)


@pytest.mark.skipif(not kernels.available(), reason="numba kernels unavailable")
def test_trainer_compiles_every_kernel_before_the_first_step(tiny_scene: Path, tmp_path: Path) -> None:
    """In a new process, the first training step compiles nothing: ``warm_up`` did it inside ``Trainer()``,
    outside the training clock (on a fresh install that is ~40 s that would count toward ``max_minutes``)."""
    script = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from nerf_widgets.engine import kernels, make_config
        from nerf_widgets.engine.data import load_dataset
        from nerf_widgets.engine.trainer import Trainer
        cfg = make_config("fast", "quick", max_steps=2, eval_every=0, checkpoint_every=0, threads=1)
        trainer = Trainer(load_dataset({str(tiny_scene)!r}), Path({str(tmp_path / "run")!r}), cfg, None)
        def signatures():
            return {{k: len(f.signatures) for k, f in kernels._STATE["k"].items()}}
        before = signatures()
        trainer.train_step()
        print(json.dumps({{"before": before, "after": signatures()}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    used = ("march_density", "gather", "composite_backward", "scatter", "masked_adam", "occupancy")
    assert all(counts["before"][k] >= 1 for k in used), counts
    assert counts["after"] == counts["before"], counts
