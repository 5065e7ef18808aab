"""The unbounded (contracted) path of ``fast``: sample spacing, the view box, proposal sampling, appearance,
and the typed model settings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine import load_field, make_config, train
from nerf_widgets.engine.checkpoint import latest_checkpoint, load_checkpoint
from nerf_widgets.engine.contracted import (
    PERSPECTIVE,
    SPHERE,
    disparity_schedule,
    forward_frame,
    inverse_schedule,
    view_box,
    warp_points,
)
from nerf_widgets.engine.data import load_dataset
from nerf_widgets.engine.fast import FastModel
from nerf_widgets.engine.render import contract
from nerf_widgets.engine.settings import FastSettings, VanillaSettings, settings_for
from tests.engine.engine_scene import make_scene
from tests.engine.markers import needs_kernels

CUBE = torch.tensor([[-2.0, -2, -2], [2, 2, 2]])


def test_unknown_model_setting_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown fast model settings: res_shedule; known: .*res_schedule"):
        FastSettings.from_options({"res_shedule": [[0, 32]]}, "fast")
    with pytest.raises(ValidationError, match=r"unknown vanilla model settings: hidden"):
        settings_for("vanilla", {"hidden": 64})
    with pytest.raises(ValidationError, match="unknown fast model settings: colour"):
        FastModel(CUBE, False, 0.1, {"colour": 1})


def test_model_setting_types_are_checked() -> None:
    with pytest.raises(ValidationError, match="hidden must be like 64"):
        FastSettings.from_options({"hidden": "wide"}, "fast")
    with pytest.raises(ValidationError, match="res_schedule"):
        FastSettings.from_options({"res_schedule": [[5, 32]]}, "fast")  # must start at step 0
    with pytest.raises(ValidationError, match="fit_box"):
        FastSettings.from_options({"fit_box": 1}, "fast")
    assert FastSettings.from_options({"res_schedule": [[0, 16], [10, 24]], "far": 100}, "fast").far == 100.0
    assert VanillaSettings.from_options({"width": 64}, "vanilla").width == 64
    with pytest.raises(ValidationError, match="appearance must be auto, on or off"):
        FastModel(CUBE, False, 0.1, {"appearance": "sometimes"})


def test_disparity_schedule_keeps_one_step_per_contracted_voxel() -> None:
    near, step, t_lin, far = 0.2, 0.05, 2.0, 1000.0
    s, ds = disparity_schedule(near, step, t_lin, far)
    t = near + s
    assert bool((ds > 0).all()) and math.isclose(float(t[-1] + ds[-1]), far, rel_tol=1e-3)
    assert float(ds[t < t_lin - 1e-6].max()) <= step * 1.001
    # beyond t_lin the step in contracted space (a ray from the centre) stays at most step / t_lin^2 * ...:
    x = torch.cat([t, t[-1:] + ds[-1:]])[:, None] * torch.tensor([[1.0, 0.0, 0.0]])
    moved = contract(x)[:, 0].diff()
    assert float(moved.max()) <= step * 1.001
    # a cone schedule (steps ~ t / 64) needs several times more samples to reach the same far plane
    cone = math.log(far / t_lin) / math.log1p(1 / 64)
    assert s.numel() < cone / 2


def test_view_box_covers_what_forward_cameras_see() -> None:
    c2w = torch.eye(4)[:3].repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([-0.1, 0.0, 0.1])
    c2w[:, 2, 3] = 1.0  # cameras one unit from the centre, looking down -z
    intr = torch.tensor([[100.0, 100.0, 64.0, 48.0]]).repeat(3, 1)
    box = view_box(c2w, intr, (96, 128), near=0.3, far=1000.0)
    size = box[1] - box[0]
    assert bool((size < 4.0).all()) and float(size.prod()) < 0.35 * 64  # well under the [-2,2]^3 cube
    # every contracted point along a corner ray of a view lies in the box
    d = torch.nn.functional.normalize(torch.tensor([(0 - 64) / 100.0, 48 / 100.0, -1.0]), dim=0)
    pts = contract(c2w[0, :, 3] + d * torch.linspace(0.3, 1000.0, 500)[:, None])
    assert bool(((pts >= box[0] - 1e-4) & (pts <= box[1] + 1e-4)).all())


def rig(forward_facing: bool, scale: float = 0.05) -> torch.Tensor:
    """Camera-to-model [8,3,4] in the model frame (rotations scaled as ``scene_normalization`` leaves them):
    a small grid of cameras looking down -z (LLFF), or a half orbit looking at the centre."""
    out = []
    for i in range(8):
        if forward_facing:
            rot = torch.linalg.matrix_exp(torch.tensor([[0.0, 0, 0.05], [0, 0, -0.03], [-0.05, 0.03, 0]]) * (i % 3 - 1))
            pos = torch.tensor([0.1 * (i % 4) - 0.15, 0.1 * (i // 4) - 0.05, 1.0])
        else:
            a = math.pi * i / 7
            back = torch.tensor([math.cos(a), math.sin(a), 0.0])
            right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back)
            rot, pos = torch.stack([right, torch.linalg.cross(back, right), back], 1), back
        out.append(torch.cat([rot * scale, pos[:, None]], 1))
    return torch.stack(out)


def test_forward_facing_captures_get_the_perspective_grid_and_orbits_keep_the_sphere() -> None:
    frame = forward_frame(rig(True))
    assert frame is not None and forward_frame(rig(False)) is None
    assert torch.allclose(frame[:, :3] @ frame[:, :3].T, torch.eye(3), atol=1e-5)  # a rotation, unscaled
    assert float(frame[2, 2]) > 0.99  # looking down -z like the rig
    intr = torch.tensor([[60.0, 60.0, 32.0, 24.0]]).repeat(8, 1)
    model = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 24]]})
    model.fit_views(rig(True), intr, (48, 64), depths=(0.5, 6.0))
    assert int(model.warp) == PERSPECTIVE
    # the same ~24^3 corners, half of 24 in depth, the rest across, a cell as wide as high in pixels
    ext = (model.aabb[1] - model.aabb[0]).tolist()
    rx, ry, rz = model.dims
    assert rz == 12 and rx > 24 and abs(math.prod(model.dims) / 24**3 - 1) < 0.05
    assert math.isclose(ext[0] / (rx - 1), ext[1] / (ry - 1), rel_tol=0.1)
    assert model.step_size() > 0 and model.occ.numel() == (rx - 1) * (ry - 1) * (rz - 1)
    # what every view sees between its near depth and infinity lies in the box; 1/z stays below 1/(0.9 near)
    c2w = rig(True)[5]
    d_cam = torch.tensor([[-32 / 60, 24 / 60, -1.0], [32 / 60, -24 / 60, -1.0], [0.0, 0.0, -1.0]])
    depth = torch.tensor([0.5, 1.0, 3.0, 100.0, 1e4])
    pts = (c2w[:, 3] + (d_cam @ (c2w[:, :3] / 0.05).T)[:, None, :] * depth[None, :, None]).reshape(-1, 3)
    unit = model.to_unit(pts)
    assert bool(((unit >= 0) & (unit <= 1)).all())
    assert 1.0 / 0.5 < float(model.aabb[1, 2]) < 1.0 / 0.4 and float(model.aabb[0, 2]) < 1e-3
    behind = warp_points(torch.tensor([[0.0, 0.0, 2.0]]), PERSPECTIVE, model.warp_frame)
    assert bool((model.to_unit(torch.tensor([[0.0, 0.0, 2.0]])) < 0).all()) and float(behind.max()) < 0
    orbit = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 24]]})
    orbit.fit_views(rig(False), intr, (48, 64))
    assert int(orbit.warp) == SPHERE
    off = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 24]], "forward_facing": "off"})
    off.fit_views(rig(True), intr, (48, 64))
    assert int(off.warp) == SPHERE


def test_the_perspective_grid_survives_a_checkpoint() -> None:
    """A forward-facing run's warp and reference camera are buffers: a model rebuilt from its state (resume,
    ``load_field`` for export) reads the grid in the same space."""
    intr = torch.tensor([[60.0, 60.0, 32.0, 24.0]]).repeat(8, 1)
    model = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 24]]})
    model.fit_views(rig(True), intr, (48, 64), depths=(0.5, 6.0))
    model.density.table.normal_(0, 2)
    again = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 24]]})
    again.load_state_dict(model.state_dict())
    assert int(again.warp) == PERSPECTIVE and torch.equal(again.warp_frame, model.warp_frame)
    pts = torch.tensor([[0.0, 0.0, -0.5], [0.2, -0.1, -2.0], [0.0, 0.0, 2.0]])
    torch.testing.assert_close(again.query_density(pts), model.query_density(pts))
    assert float(model.query_density(pts)[2]) == 0.0  # behind the reference camera: outside the grid


def test_inverse_schedule_is_uniform_in_disparity() -> None:
    s, ds = inverse_schedule(0.5, 0.01, 1000.0)
    t = torch.cat([0.5 + s, (0.5 + s[-1:] + ds[-1:])])
    steps = (1.0 / t).diff()
    assert bool((ds > 0).all()) and math.isclose(float(t[-1]), 1000.0, rel_tol=1e-3)
    assert float((steps[:-1] + 0.01).abs().max()) < 1e-4  # the last step is cut at far


def wall_model(samples: int = 32) -> FastModel:
    """Unbounded model with an opaque wall at z = -0.5 and empty space elsewhere."""
    model = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 48]], "proposal_samples": samples,
                                         "stop_trans": 0.0, "appearance": "off"})
    r = model.res
    z = torch.linspace(-2, 2, r)
    vol = torch.full((r, r, r), -20.0)
    vol[:, :, (z + 0.5).abs() < 0.1] = 8.0
    model.density.table.copy_(vol.reshape(-1, 1))
    model.update_occupancy()
    return model


@needs_kernels
def test_proposal_puts_samples_on_the_surface() -> None:
    model = wall_model(samples=32)
    n = 256
    origins = torch.tensor([[0.0, 0.0, 1.0]]).repeat(n, 1)
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=torch.Generator().manual_seed(0)) * 0.2
                                         + torch.tensor([0.0, 0.0, -1.0]), dim=-1)
    out = model.render_rays(origins, dirs, torch.zeros(3), torch.rand(n))
    assert float(out["samples"]) <= 32 * n  # the budget holds
    hit = out["acc"] > 0.9
    assert float(hit.float().mean()) > 0.95  # (nearly) every ray found the wall, at its depth
    depth = (out["depth"] / out["acc"].clamp(min=1e-6) * -dirs[:, 2])[hit]  # along z; the wall spans z 1.4..1.6 from the cameras
    assert float(((depth > 1.3) & (depth < 1.6)).float().mean()) > 0.95
    # in fog (a new model: every cell a little dense) a march of every step costs many more samples than the budget
    fog = {"res_schedule": [[0, 48]], "appearance": "off"}
    dense = FastModel(CUBE, False, 0.1, {**fog, "proposal_samples": 0}).render_rays(origins, dirs, torch.zeros(3))
    budget = FastModel(CUBE, False, 0.1, {**fog, "proposal_samples": 32}).render_rays(origins, dirs, torch.zeros(3))
    assert float(budget["samples"]) <= 32 * n < float(dense["samples"]) / 2


def perspective_model(samples: int = 24) -> FastModel:
    """A forward-facing model: the perspective grid, finer across than in depth, filled with random fog."""
    model = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 24]], "proposal_samples": samples, "appearance": "off"})
    model.fit_views(rig(True), torch.tensor([[60.0, 60.0, 32.0, 24.0]]).repeat(8, 1), (48, 64), depths=(0.5, 6.0))
    torch.manual_seed(3)
    model.density.table.normal_(-3, 3)
    model.features.table.normal_(0, 1)
    model.update_occupancy()
    return model


@needs_kernels
@pytest.mark.parametrize("scene", ["wall", "fog", "perspective"])
def test_pytorch_proposal_sampler_makes_the_numba_decisions(scene: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA runs ``proposal.march_proposal_torch``; on the CPU it places the samples the numba kernel places
    (same rays, counts and depths, up to float rounding at a few cell borders), so renders agree; also on a
    perspective grid whose axes have different corner counts."""
    from nerf_widgets.engine import fast_fused
    from nerf_widgets.engine.proposal import march_proposal_torch

    model = perspective_model() if scene == "perspective" else wall_model(samples=24)
    if scene == "fog":  # every cell somewhat dense, random: many intervals, early termination, blending
        torch.manual_seed(2)
        model.density.table.normal_(-3, 3)
        model.update_occupancy()
    g = torch.Generator().manual_seed(1)
    n = 400
    origins = torch.randn(n, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, 1.0])
    dirs = torch.nn.functional.normalize(torch.randn(n, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, -1.0]), dim=-1)
    if scene == "perspective":
        assert len(set(model.dims)) == 3
        origins = origins * 0.3 + torch.tensor([0.0, 0.0, 0.7])
    u = torch.rand(n, generator=g)
    starts, ray, t, dt = fast_fused.march(model, origins, dirs, u)[:4]
    ref = march_proposal_torch(model, origins, dirs, u)
    counts = torch.bincount(ref["ray_idx"], minlength=n)
    same = counts.numpy() == (starts[1:] - starts[:-1])
    assert same.mean() > 0.98 and int(counts.sum()) > 10 * n
    mask = torch.from_numpy(same)[ref["ray_idx"]]
    # far samples (1/z near 0 on the perspective grid) differ in float32 rounding a little more
    torch.testing.assert_close(ref["t"][mask], torch.from_numpy(t)[torch.from_numpy(same)[torch.from_numpy(ray)]],
                               atol=1e-4, rtol=1e-3 if scene == "perspective" else 1e-4)
    renders = []
    for flag in ("1", "0"):
        monkeypatch.setenv("NERF_WIDGETS_KERNELS", flag)
        renders.append(model.render_rays(origins, dirs, torch.full((3,), 0.5), u)["rgb"].detach())
    assert float((renders[0] - renders[1]).abs().max(1).values.le(1e-3).float().mean()) > 0.98


@needs_kernels
def test_empty_contracted_space_costs_no_samples() -> None:
    model = wall_model()
    model.density.table.fill_(-20.0)
    model.update_occupancy()
    assert not bool(model.occ.any())
    out = model.render_rays(torch.zeros(8, 3), torch.nn.functional.normalize(torch.randn(8, 3), dim=-1),
                            torch.tensor([0.2, 0.4, 0.6]))
    assert float(out["samples"]) == 0.0
    torch.testing.assert_close(out["rgb"], torch.tensor([[0.2, 0.4, 0.6]]).expand(8, 3))


def test_appearance_is_per_view_in_training_and_left_out_for_rendering() -> None:
    model = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 16]]}, views=3)
    assert model.appearance.matrix.shape == (3, 3, 3)  # auto: on for unbounded scenes
    assert FastModel(CUBE, True, 0.1, {"res_schedule": [[0, 16]]}, views=3).appearance.matrix.shape[0] == 0
    with torch.no_grad():
        model.appearance.offset[1] = torch.tensor([0.3, 0.0, -0.3])
    origins = torch.zeros(4, 3)
    dirs = torch.nn.functional.normalize(torch.ones(4, 3), dim=-1)
    base = model.render_rays(origins, dirs, torch.ones(3))["rgb"]
    shifted = model.render_rays(origins, dirs, torch.ones(3), image=torch.full((4,), 1))["rgb"]
    same = model.render_rays(origins, dirs, torch.ones(3), image=torch.zeros(4, dtype=torch.long))["rgb"]
    # centred over the 3 views: view 1 is 0.2 above the average, views 0 and 2 0.1 below; identity = the average
    torch.testing.assert_close(shifted - base, torch.tensor([[0.2, 0.0, -0.2]]).expand(4, 3))
    torch.testing.assert_close(same - base, torch.tensor([[-0.1, 0.0, 0.1]]).expand(4, 3))
    with torch.no_grad():
        model.appearance.offset.fill_(0.4)  # the same change in every view is the scene's colour: no effect
    torch.testing.assert_close(model.render_rays(origins, dirs, torch.ones(3), image=torch.full((4,), 1))["rgb"], base)
    with torch.no_grad():
        model.appearance.offset[1] = torch.tensor([0.3, 0.0, -0.3])
        model.appearance.offset[0] = model.appearance.offset[2] = 0.0
    out = {"rgb": shifted}
    loss, mse = model.loss(out, {"rgb": shifted.detach()})
    assert float(mse) == 0.0 and float(loss) > 0.0  # the penalty pulls view 1 back toward identity
    assert any(p is model.appearance.offset for g in model.param_groups(1e-3) for p in g["params"])


def test_real_capture_trains_on_the_contracted_path_and_resumes_its_box(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "photos", n_views=8, size=32, opaque=True)
    assert not load_dataset(scene).bounded
    cfg = make_config("fast", "quick", max_steps=6, max_minutes=0, batch_rays=256, eval_every=0, checkpoint_every=3,
                      threads=1, model={"res_schedule": [[0, 16]], "occ_every": 2})
    result = train(scene, tmp_path / "run", cfg, resume=False)
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    box = state["model"]["aabb"]
    assert result.step == 6 and state["scene"]["views"] == 7  # 8 views, every 8th held out for testing
    assert float((box[1] - box[0]).max()) <= 4.0 and not torch.equal(box, CUBE)  # fitted to the views
    assert state["model"]["appearance.matrix"].shape == (7, 3, 3)
    field = load_field(tmp_path / "run", device="cpu")
    torch.testing.assert_close(field.model.aabb, box)
    image = field.render(load_dataset(scene).cameras[0])
    assert image.shape == (32, 32, 3) and float(image.std()) > 0.0


def test_checkpoints_from_before_appearance_still_load() -> None:
    old = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 16]]}, views=3).state_dict()
    del old["appearance.matrix"], old["appearance.offset"]
    model = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 16]]}, views=3)
    with torch.no_grad():
        model.appearance.offset.fill_(0.5)
    model.load_state_dict(old)
    assert float(model.appearance.offset.abs().max()) == 0.0  # identity


def test_an_unbounded_schedule_given_alone_is_the_one_an_unbounded_scene_trains_on() -> None:
    """``unbounded_res_schedule`` given on its own used to leave an unbounded scene on the bounded schedule
    (benchmarks of finer unbounded grids then measured the bounded 64^3 start instead)."""
    model = FastModel(CUBE, False, 0.1, {"unbounded_res_schedule": [[0, 20], [5, 24]]})
    assert model.res == 20 and tuple(map(tuple, model.opt["res_schedule"])) == ((0, 20), (5, 24))
    model.before_step(5)
    assert model.res == 24
    bounded = FastModel(CUBE, True, 0.1, {"unbounded_res_schedule": [[0, 20]]})
    assert bounded.res == FastSettings().res_schedule[0][1]
    both = FastModel(CUBE, False, 0.1, {"res_schedule": [[0, 12]], "unbounded_res_schedule": [[0, 20]]})
    assert both.res == 12  # an explicit res_schedule applies to both kinds of scene
