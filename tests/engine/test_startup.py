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

from nerf_widgets.engine import make_config
from nerf_widgets.engine.data import load_dataset
from nerf_widgets.engine.fast import dilate
from nerf_widgets.engine.field import LoadedField
from nerf_widgets.engine.models import build_model
from nerf_widgets.engine.trainer import Trainer
from tests.engine.engine_scene import SPHERES, make_scene
from tests.engine.markers import needs_kernels


def test_separable_dilation_equals_the_square_max_pool() -> None:
    mask = torch.rand(61, 47, generator=torch.Generator().manual_seed(0)) > 0.97
    for rad in (1, 4, 9):
        square = F.max_pool2d(mask[None, None].float(), 2 * rad + 1, stride=1, padding=rad)[0, 0] > 0
        assert torch.equal(dilate(mask, rad), square)
        assert int(square.sum()) > int(mask.sum())


def test_carving_fits_the_box_to_the_objects_and_empties_space_outside_the_masks(tmp_path: Path) -> None:
    # 48 views: with 16 the hull keeps phantom wedges out to the box edges (a hull is only as tight as its views)
    scene = make_scene(tmp_path / "scene", n_views=48)
    cfg = make_config("fast", "quick", max_steps=1, eval_every=0, checkpoint_every=0)
    trainer = Trainer(load_dataset(scene), tmp_path / "run", cfg, None)
    model = trainer.model
    # the grid box shrank from [-1.5, 1.5]^3 to the visual hull, yet holds every sphere whole
    lo, hi = model.aabb
    spheres_lo = torch.tensor([min(c[i] - r for c, r, _ in SPHERES) for i in range(3)])
    spheres_hi = torch.tensor([max(c[i] + r for c, r, _ in SPHERES) for i in range(3)])
    assert bool((lo <= spheres_lo).all()) and bool((hi >= spheres_hi).all())
    assert float((hi - lo).prod()) < 0.5 * 3.0**3
    empty = float(model.sigma(torch.tensor(-20.0)))
    fresh = float(model.sigma(torch.tensor(0.0)))
    carved = model.density.table[:, 0] == -20.0
    r = model.res
    axis = torch.linspace(0, 1, r)
    unit = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    pts = lo + unit * (hi - lo)
    inside = torch.zeros(pts.shape[0], dtype=torch.bool)
    for centre, radius, _ in SPHERES:
        inside |= (pts - torch.tensor(centre)).norm(dim=1) < radius
    # every corner inside a sphere keeps its density; space between and around them goes
    assert int(inside.sum()) > 100 and not bool(carved[inside].any())
    assert 0.1 < float(carved.float().mean()) < 0.99
    kept = int(inside.nonzero()[0])
    assert float(model.query_density(pts[kept][None])[0]) == pytest.approx(fresh, rel=1e-4)
    assert bool(carved[0]) and float(model.query_density(pts[:1])[0]) == pytest.approx(empty, rel=1e-3)
    # a checkpoint brings the fitted box back, and exports are bounded by it (world frame = model frame here)
    scene = trainer.state()["scene"]
    restored = build_model(cfg, scene)
    restored.load_state_dict(trainer.state()["model"])
    assert torch.equal(restored.aabb, model.aabb)
    assert torch.equal(LoadedField(restored, scene, torch.device("cpu"), 1).aabb, model.aabb)


def test_carving_keeps_the_given_box_without_fit_box(tiny_scene: Path, tmp_path: Path) -> None:
    cfg = make_config("fast", "quick", max_steps=1, eval_every=0, checkpoint_every=0, model={"fit_box": False})
    model = Trainer(load_dataset(tiny_scene), tmp_path / "run", cfg, None).model
    assert torch.equal(model.aabb, torch.tensor([[-1.5] * 3, [1.5] * 3]))
    assert 0.5 < float((model.density.table[:, 0] == -20.0).float().mean()) < 0.99


@needs_kernels
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
