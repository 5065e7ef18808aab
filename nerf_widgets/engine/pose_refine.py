"""Camera pose refinement: a small rotation and translation per training view, learnt with the field.

Poses from COLMAP on handheld photos are off by a fraction of a degree here and there; the field then
blurs what it cannot place. As nerfstudio's camera optimiser (SO3xR3) does, each training view gets 6
numbers, an axis-angle rotation of its rays about the camera centre and a translation of the centre,
both in the model frame, fitted by the photometric loss through the renderer (so rays must carry
gradients to the samples' positions: the PyTorch render path, see ``FastModel.render_rays``). A penalty
keeps them small (the scene's own placement is not theirs to change). Only training rays move; test views
and renders use the poses as given (the evaluation protocol, see the README).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PoseRefiner", "axis_angle_matrix"]


def axis_angle_matrix(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [N,3,3] of axis-angle vectors [N,3] (Rodrigues; exact and differentiable at 0)."""
    theta2 = (r * r).sum(-1, keepdim=True)[..., None]  # [N,1,1]
    theta = torch.sqrt(theta2.clamp(min=1e-12))
    small = theta2 < 1e-8
    # sin(t)/t and (1 - cos(t))/t^2 by their series near 0, where the closed forms lose precision
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp(min=1e-12))
    zero = torch.zeros_like(r[:, 0])
    k = torch.stack([zero, -r[:, 2], r[:, 1], r[:, 2], zero, -r[:, 0], -r[:, 1], r[:, 0], zero], -1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=r.dtype, device=r.device).expand_as(k)
    return eye + a * k + b * (k @ k)


class PoseRefiner(nn.Module):
    """``forward(origins [N,3], dirs [N,3], image [N])`` -> the rays of each view's refined camera."""

    def __init__(self, views: int) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(views, 6))  # axis-angle (radians), translation (model units)

    @property
    def active(self) -> bool:
        return self.delta.shape[0] > 0

    def forward(self, origins: torch.Tensor, dirs: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.delta.index_select(0, image)
        rot = axis_angle_matrix(d[:, :3])
        return origins + d[:, 3:], (rot @ dirs[:, :, None])[:, :, 0]

    def penalty(self) -> torch.Tensor:
        """Mean squared size of the corrections (radians and model units)."""
        return self.delta.square().mean() if self.active else self.delta.sum()

    @torch.no_grad()
    def summary(self) -> dict[str, float]:
        """How far the cameras moved: median and largest rotation (degrees) and translation (model units)."""
        if not self.active:
            return {}
        angle = torch.rad2deg(self.delta[:, :3].norm(dim=-1))
        shift = self.delta[:, 3:].norm(dim=-1)
        return {"rotation_deg_median": float(angle.median()), "rotation_deg_max": float(angle.max()),
                "translation_median": float(shift.median()), "translation_max": float(shift.max())}
