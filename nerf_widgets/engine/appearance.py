"""Per-view appearance: a colour transform per training view (exposure and white balance of real photos).

Photos of one scene differ in exposure and white balance; without a way to explain that per view, the
radiance field averages it into floaters and a colour cast. nerfacto learns a latent code per image fed
to its colour network; exposure and white balance are a 3x3 colour matrix and an offset on the pixel, so
this learns exactly that per view (12 numbers), applied to each ray's composited colour: one small matmul
per ray instead of a wider MLP on every sample. The transforms are centred over the views (their mean is
the scene's own colour) and a penalty pulls each toward identity, the appearance that evaluation and
rendering use (``image=None``): the test views' own exposure is never
fitted on them (the evaluation protocol, see the README).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ViewAppearance"]


class ViewAppearance(nn.Module):
    """``forward(rgb [N,3], image [N] | None)`` -> rgb with each ray's view transform (identity for None)."""

    def __init__(self, views: int) -> None:
        super().__init__()
        self.matrix = nn.Parameter(torch.zeros(views, 3, 3))  # delta from identity
        self.offset = nn.Parameter(torch.zeros(views, 3))

    def forward(self, rgb: torch.Tensor, image: torch.Tensor | None) -> torch.Tensor:
        if image is None or self.matrix.shape[0] == 0:
            return rgb
        matrix, offset = self.centred()
        m, b = matrix.index_select(0, image), offset.index_select(0, image)
        return rgb + (m @ rgb[:, :, None])[:, :, 0] + b

    def centred(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The transforms minus their mean over views: a change shared by every view is the scene's colour, not
        an appearance, so identity (what evaluation renders) is the views' average appearance."""
        return self.matrix - self.matrix.mean(0), self.offset - self.offset.mean(0)

    def penalty(self) -> torch.Tensor:
        """Mean squared distance of the (centred) transforms from identity."""
        if self.matrix.shape[0] == 0:
            return self.matrix.sum()
        matrix, offset = self.centred()
        return matrix.square().mean() + offset.square().mean()
