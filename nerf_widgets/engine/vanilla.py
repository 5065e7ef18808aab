"""``vanilla``: the original NeRF (Mildenhall et al. 2020) as the correctness reference.

Positional encoding (10 frequencies for position, 4 for direction), coarse and fine MLPs of 8 x 256
with a skip connection after the 4th layer, density head, view-dependent colour head (256 -> 128 -> 3),
stratified coarse samples, inverse-CDF fine samples from the coarse weights, alpha compositing; both
levels get the photometric loss. Bounded scenes sample the box, unbounded ones the contracted space.
One deliberate change: density is softplus(raw - 1) (as in mip-NeRF) instead of ReLU, because a ReLU
density head can start (and stay) dead everywhere on narrow test networks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nerf_widgets.engine.precision import check_precision, network_autocast
from nerf_widgets.engine.render import (
    composite_padded,
    contract,
    positional_encoding,
    ray_aabb,
    sample_pdf,
    stratified_samples,
)
from nerf_widgets.engine.settings import VanillaSettings

__all__ = ["NerfMLP", "VanillaModel", "DEFAULTS"]

DEFAULTS: dict[str, Any] = VanillaSettings().to_json()


class NerfMLP(nn.Module):
    """F(gamma(x), gamma(d)) -> (sigma [N], rgb [N,3])."""

    def __init__(self, pos_freqs: int = 10, dir_freqs: int = 4, width: int = 256, depth: int = 8, skip: int = 4) -> None:
        super().__init__()
        self.pos_freqs, self.dir_freqs, self.skip = pos_freqs, dir_freqs, skip
        d_pos, d_dir = 3 + 6 * pos_freqs, 3 + 6 * dir_freqs
        layers = []
        for i in range(depth):
            d_in = d_pos if i == 0 else width + (d_pos if i == skip else 0)
            layers.append(nn.Linear(d_in, width))
        self.layers = nn.ModuleList(layers)
        self.sigma_head = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.rgb_hidden = nn.Linear(width + d_dir, width // 2)
        self.rgb_out = nn.Linear(width // 2, 3)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        enc = positional_encoding(x, self.pos_freqs)
        h = enc
        for i, layer in enumerate(self.layers):
            h = torch.relu(layer(torch.cat([h, enc], -1) if i == self.skip else h))
        return h

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        sigma = F.softplus(self.sigma_head(h)[:, 0] - 1.0)
        hd = torch.relu(self.rgb_hidden(torch.cat([self.feature(h), positional_encoding(d, self.dir_freqs)], -1)))
        return sigma, torch.sigmoid(self.rgb_out(hd))

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.sigma_head(self.trunk(x))[:, 0] - 1.0)


class VanillaModel(nn.Module):
    """Coarse + fine NeRF in the model frame (box for bounded scenes, contracted space otherwise)."""

    aabb: torch.Tensor

    def __init__(self, aabb: torch.Tensor, bounded: bool, near: float, options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.opt = VanillaSettings.from_options(options, "vanilla").to_json()
        check_precision(self.opt["mixed_precision"])
        self.bounded, self.near = bounded, float(near)
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(2, 3))
        args = [int(self.opt[k]) for k in ("pos_freqs", "dir_freqs", "width", "depth", "skip")]
        self.coarse, self.fine = NerfMLP(*args), NerfMLP(*args)

    def _warp(self, x: torch.Tensor) -> torch.Tensor:
        """Positions fed to the MLP: unchanged in a box, contracted (radius < 2) otherwise."""
        return x if self.bounded else contract(x)

    def _range(self, origins: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.bounded:
            near, far = ray_aabb(origins, dirs, self.aabb)
            return near, torch.maximum(far, near + 1e-3)
        n = origins.shape[0]
        return torch.full((n,), self.near, device=origins.device), torch.full((n,), float(self.opt["far"]))

    def _level(self, mlp: NerfMLP, o: torch.Tensor, d: torch.Tensor, t: torch.Tensor, bg: torch.Tensor,
               hit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pts = self._warp(o[:, None] + d[:, None] * t[..., None]).reshape(-1, 3)
        with network_autocast(o.device, str(self.opt["mixed_precision"]), "vanilla"):
            sigma, rgb = mlp(pts, d[:, None].expand(-1, t.shape[1], -1).reshape(-1, 3))
        sigma, rgb = sigma.float(), rgb.float()
        sigma = sigma.view(t.shape) * hit[:, None]
        rgb_r, acc, w = composite_padded(sigma, rgb.view(*t.shape, 3), t, far_delta=1e-3 if self.bounded else 1e10)
        return rgb_r + (1 - acc)[:, None] * bg, w

    def render_rays(self, origins: torch.Tensor, dirs: torch.Tensor, background: torch.Tensor,
                    jitter: torch.Tensor | None = None, generator: torch.Generator | None = None,
                    image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Coarse then fine rendering; ``rgb`` is the fine colour, ``rgb_coarse`` joins the training loss
        (``image``, the views' indices, is unused: vanilla has no per-view appearance)."""
        near, far = self._range(origins, dirs)
        hit = (far > near).float() if self.bounded else torch.ones_like(near)
        perturb = jitter is not None
        t_c = stratified_samples(near, far, int(self.opt["n_coarse"]), perturb, generator)
        rgb_c, w_c = self._level(self.coarse, origins, dirs, t_c, background, hit)
        mids = 0.5 * (t_c[:, 1:] + t_c[:, :-1])
        t_f = sample_pdf(mids, w_c[:, 1:-1].detach(), int(self.opt["n_fine"]), perturb, generator)
        t_all = torch.sort(torch.cat([t_c, t_f.detach()], -1), -1).values
        rgb_f, w_f = self._level(self.fine, origins, dirs, t_all, background, hit)
        depth = (w_f * t_all).sum(-1)
        return {"rgb": rgb_f, "rgb_coarse": rgb_c, "acc": w_f.sum(-1), "depth": depth,
                "samples": torch.tensor(float(t_c.numel() + t_all.numel()))}

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, fine MSE): NeRF supervises both levels, so the coarse one learns where to look."""
        mse = torch.mean((out["rgb"] - batch["rgb"]) ** 2)
        return mse + torch.mean((out["rgb_coarse"] - batch["rgb"]) ** 2), mse.detach()

    def warm_up(self) -> None:
        return None

    def before_step(self, step: int) -> None:
        return None

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        return [{"params": list(self.parameters()), "lr": lr}]

    def grid_step(self, lr: float) -> None:
        return None

    @torch.no_grad()
    def query_density(self, pts: torch.Tensor) -> torch.Tensor:
        return self.fine.density(self._warp(pts))

    @torch.no_grad()
    def query_color(self, pts: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        return self.fine(self._warp(pts), dirs)[1]
