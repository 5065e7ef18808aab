"""Training ray batches and evaluation views from a ``Dataset`` (model frame, unit directions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nerf_widgets.engine.data import Dataset
from nerf_widgets.engine.rays import Camera, camera_rays, pixel_rays

__all__ = ["RaySampler", "eval_view", "render_camera", "scaled_camera"]


class RaySampler:
    """Uniform random pixels over the training images; RGBA is composited on the configured background."""

    def __init__(self, data: Dataset, indices: list[int], background: str, device: torch.device) -> None:
        self.device = device
        self.images = torch.from_numpy(data.images[indices])  # [N,H,W,C] uint8
        cams = [data.cameras[i] for i in indices]
        t = data.transform
        self.c2w = torch.tensor(np.stack([(t @ c.c2w)[:3] for c in cams]), dtype=torch.float32)
        self.intr = torch.tensor([[c.fx, c.fy, c.cx, c.cy] for c in cams], dtype=torch.float32)
        dist = torch.tensor([c.distortion for c in cams], dtype=torch.float32)
        self.dist = dist if bool((dist != 0).any()) else None
        self.background = background

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` rays: origins, dirs [n,3], target rgb [n,3] in [0,1], background [n,3], image [n] (the index
        of each ray's training view, for per-view appearance)."""
        count, h, w, _ = self.images.shape
        img = torch.randint(0, count, (n,), generator=generator)
        px = torch.randint(0, w, (n,), generator=generator)
        py = torch.randint(0, h, (n,), generator=generator)
        origins, dirs = pixel_rays(self.c2w[img], self.intr[img], None if self.dist is None else self.dist[img], px, py)
        colour = self.images[img, py, px].float() / 255.0
        if self.background == "random":
            bg = torch.rand(n, 3, generator=generator)
        else:
            bg = torch.full((n, 3), 1.0 if self.background == "white" else 0.0)
        rgb = colour[:, :3]
        if colour.shape[1] == 4:
            rgb = rgb * colour[:, 3:] + (1.0 - colour[:, 3:]) * bg
        to = self.device
        return {"origins": origins.to(to), "dirs": dirs.to(to), "rgb": rgb.to(to), "background": bg.to(to),
                "image": img.to(to)}


def scaled_camera(cam: Camera, max_side: int | None) -> Camera:
    """The same view at most ``max_side`` pixels on its long side (intrinsics scaled to match)."""
    if not max_side or max(cam.width, cam.height) <= max_side:
        return cam
    s = max_side / max(cam.width, cam.height)
    w, h = max(1, round(cam.width * s)), max(1, round(cam.height * s))
    sx, sy = w / cam.width, h / cam.height
    return Camera(cam.c2w, cam.fx * sx, cam.fy * sy, cam.cx * sx, cam.cy * sy, w, h, cam.distortion, cam.name,
                  cam.near, cam.far)


@torch.no_grad()
def render_camera(model: Any, cam: Camera, transform: np.ndarray, background: tuple[float, float, float],
                  device: torch.device, chunk: int = 16384) -> np.ndarray:
    """Render one camera in ray chunks (bounded memory) -> [H,W,3] float32 in [0,1]."""
    model.eval()
    origins, dirs = camera_rays(cam, transform)
    bg = torch.tensor(background, dtype=torch.float32, device=device)
    parts = []
    for i in range(0, origins.shape[0], chunk):
        o, d = origins[i:i + chunk].to(device), dirs[i:i + chunk].to(device)
        parts.append(model.render_rays(o, d, bg)["rgb"].clamp(0, 1).float().cpu())
    return torch.cat(parts).view(cam.height, cam.width, 3).numpy()


def ground_truth(data: Dataset, index: int, cam: Camera) -> np.ndarray:
    """The frame composited on white, resized to ``cam`` -> [H,W,3] float32 in [0,1]."""
    from PIL import Image

    img = data.images[index]
    if img.shape[1] != cam.width or img.shape[0] != cam.height:
        mode = "RGBA" if img.shape[2] == 4 else "RGB"
        img = np.asarray(Image.fromarray(img, mode).resize((cam.width, cam.height), Image.Resampling.BOX))
    x = img.astype(np.float32) / 255.0
    if x.shape[2] == 4:
        x = x[..., :3] * x[..., 3:] + (1.0 - x[..., 3:])
    return x


def eval_view(model: Any, data: Dataset, index: int, max_side: int | None,
              device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(rendered, ground truth) of dataset frame ``index`` on white, both [H,W,3] float32."""
    cam = scaled_camera(data.cameras[index], max_side)
    return render_camera(model, cam, data.transform, (1.0, 1.0, 1.0), device), ground_truth(data, index, cam)
