"""Camera pose refinement: per-view corrections learnt through the renderer (the PyTorch path on a CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine import kernels
from nerf_widgets.engine.fast import FastModel
from nerf_widgets.engine.pose_refine import PoseRefiner, axis_angle_matrix

AABB = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def textured_ball(options: dict | None = None) -> FastModel:
    """A bounded model holding a ball of radius 0.6 with a smooth colour pattern (no training needed)."""
    torch.manual_seed(0)
    model = FastModel(AABB, True, 0.1, {"pose_refine": True, "res_schedule": [[0, 40]], "pose_reg": 0.0,
                                        **(options or {})}, views=2)
    g = torch.linspace(-1, 1, model.res)
    x = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    with torch.no_grad():
        model.density.table[:, 0] = 40 * (0.6 - x.norm(dim=-1))
        model.features.table[:] = torch.sin(6 * x @ torch.randn(3, model.features.table.shape[1]) + torch.rand(12) * 6)
    model.update_occupancy()
    return model


def camera_rays(side: int = 24, focal: float = 30.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays of a camera at (0, 0, 2.5) looking down -Z at the ball."""
    j, i = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    d = torch.stack([(i + 0.5 - side / 2) / focal, -(j + 0.5 - side / 2) / focal, -torch.ones(side, side)], -1)
    d = torch.nn.functional.normalize(d.reshape(-1, 3), dim=-1)
    return torch.tensor([0.0, 0.0, 2.5]).expand_as(d).clone(), d


def test_axis_angle_matrices_are_rotations_about_their_axis() -> None:
    r = torch.tensor([[0.0, 0.0, math.pi / 2], [0.0, 0.0, 0.0], [1e-7, 0.0, 0.0], [0.3, -0.2, 0.5]], dtype=torch.float64)
    m = axis_angle_matrix(r)
    assert torch.allclose(m[0] @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
                          torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(m[1], torch.eye(3, dtype=torch.float64)) and torch.allclose(m[2], torch.eye(3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(m[3] @ m[3].T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(m[3] @ r[3], r[3], atol=1e-12) and abs(float(torch.linalg.det(m[3])) - 1) < 1e-12
    r0 = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)  # finite gradient at zero
    axis_angle_matrix(r0).sum().backward()
    assert r0.grad is not None and torch.isfinite(r0.grad).all()


def test_rays_of_views_without_corrections_and_renders_without_gradients_are_untouched() -> None:
    model = textured_ball()
    o, d = camera_rays(8)
    image = torch.zeros(len(d), dtype=torch.long)
    with torch.no_grad():
        model.poses.delta[0] = torch.tensor([0.1, 0.0, 0.0, 0.2, 0.0, 0.0])
        plain = model.render_rays(o, d, torch.ones(3), image=None)["rgb"]
        test_view = model.render_rays(o, d, torch.ones(3), image=image)["rgb"]  # evaluation: poses as given
    assert torch.equal(plain, test_view)
    moved_o, moved_d = model.poses(o, d, image)
    assert torch.allclose(moved_o, o + torch.tensor([0.2, 0.0, 0.0])) and torch.allclose(moved_d.norm(dim=-1), torch.ones(len(d)))
    assert not PoseRefiner(0).active and PoseRefiner(0).penalty().item() == 0.0


def test_on_a_cpu_a_share_of_the_rays_carries_the_pose_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    if not kernels.used_for(torch.device("cpu")):
        pytest.skip("the fused kernels are not in use here")
    import nerf_widgets.engine.fast as fast

    fused: list[int] = []
    real = fast.render_fused
    monkeypatch.setattr(fast, "render_fused", lambda m, o, *a, **k: fused.append(len(o)) or real(m, o, *a, **k))
    o, d = camera_rays(8)
    image = torch.zeros(len(d), dtype=torch.long)
    jitter = torch.full((len(d),), 0.5)
    plain = textured_ball({"pose_refine": False})
    out = plain.render_rays(o, d, torch.ones(3), jitter, image=image)
    out["rgb"].sum().backward()
    assert fused == [64]  # without refinement every ray is fused
    fused.clear()
    model = textured_ball({"pose_share": 0.25})
    with torch.no_grad():
        model.poses.delta[0] = torch.tensor([0.01, -0.02, 0.0, 0.01, 0.0, 0.0])
    out = model.render_rays(o, d, torch.ones(3), jitter, image=image)
    out["rgb"].sum().backward()
    assert fused == [48] and out["rgb"].shape == (64, 3)  # a quarter on the PyTorch path, in front
    assert model.poses.delta.grad is not None and model.poses.delta.grad[0].abs().sum() > 0
    assert model.poses.delta.grad[1].abs().sum() == 0  # view 1 had no rays
    # both paths draw the corrected rays: the split render matches the PyTorch one ray for ray
    with torch.enable_grad():
        moved_o, moved_d = model.poses(o, d, image)
    reference = model._render_torch(moved_o.detach(), moved_d.detach(), torch.ones(3), jitter)["rgb"]
    assert torch.allclose(out["rgb"].detach(), reference, atol=2e-3)


def test_a_misplaced_camera_is_brought_back_by_its_correction() -> None:
    """Rays of a camera turned by 2 degrees and moved by 0.022 are fitted to the picture the true camera took
    (the field held fixed): where the corrected rays meet the ball, they meet it where the true ones do."""
    model = textured_ball({"pose_share": 1.0})  # every ray carries the pose gradient (the CUDA path's way)
    o, d = camera_rays()
    image = torch.zeros(len(d), dtype=torch.long)
    bg = torch.ones(3)
    with torch.no_grad():
        truth = model.render_rays(o, d, bg)
    hit = truth["acc"] > 0.99
    err = torch.tensor([[0.02, -0.03, 0.01]])
    rot = axis_angle_matrix(err / err.norm() * math.radians(2.0))[0]
    given_o, given_d = o + torch.tensor([0.02, -0.01, 0.0]), d @ rot.T
    opt = torch.optim.Adam(model.poses.parameters(), lr=2e-3)

    def miss() -> float:
        with torch.enable_grad():
            ro, rd = model.poses(given_o, given_d, image)
        true_p = o + truth["depth"][:, None] * d
        return float((ro + truth["depth"][:, None] * rd - true_p)[hit].norm(dim=-1).mean().detach())

    before = miss()
    for _ in range(80):
        out = model.render_rays(given_o, given_d, bg, torch.full((len(d),), 0.5), image=image)
        loss = ((out["rgb"] - truth["rgb"]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = miss()
    assert before > 0.06 and after < 0.25 * before, (before, after)


def test_old_checkpoints_load_and_the_setting_is_checked() -> None:
    state = {k: v for k, v in textured_ball({"pose_refine": False}).state_dict().items() if not k.startswith("poses")}
    fresh = textured_ball()  # refinement on: its corrections start at zero
    fresh.load_state_dict(state)
    assert fresh.poses.delta.shape == (2, 6) and float(fresh.poses.delta.detach().abs().sum()) == 0.0
    with pytest.raises(ValidationError, match="pose_refine"):
        FastModel(AABB, True, 0.1, {"pose_refine": "yes"}, views=2)
    groups = textured_ball().param_groups(1e-2)
    assert [g.get("base_lr") for g in groups] == [None, 5e-4] and groups[1]["params"][0].shape == (2, 6)
