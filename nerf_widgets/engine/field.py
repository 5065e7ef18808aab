"""``load_field(run_dir)``: a trained run as plain callables for export and the live preview.

Points, directions, cameras and ``aabb`` are in world coordinates (the data's frame); the model's
normalised frame stays internal. Loaded fields are cached per (run, checkpoint file), so repeated
calls from the preview widget do not reload.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nerf_widgets.core.errors import NotFoundError
from nerf_widgets.engine.checkpoint import latest_checkpoint, load_checkpoint, read_run_config
from nerf_widgets.engine.config import TrainConfig, resolve_device
from nerf_widgets.engine.layers import without
from nerf_widgets.engine.models import RadianceModel, build_model
from nerf_widgets.engine.rays import Camera
from nerf_widgets.engine.sampler import render_camera

__all__ = ["LoadedField", "RayTrace", "load_field"]

# origins [N,3], unit directions [N,3] (world) -> colour [N,3] (what the rays hit, not blended with any
# background), opacity [N] and distance along each ray to where its colour comes from [N] (world units)
RayTrace = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]

_CACHE: dict[tuple[str, str, float, str], LoadedField] = {}


class LoadedField:
    """density(points[N,3]) -> [N], color(points[N,3], dirs[N,3]) -> [N,3], aabb [2,3], render(camera)."""

    def __init__(self, model: RadianceModel, scene: dict[str, Any], device: torch.device, step: int) -> None:
        self.model, self.device, self.step = model, device, step
        model.eval()
        self.transform = np.asarray(scene["transform"], dtype=np.float64)
        self.bounded = bool(scene["bounded"])
        self._scale = float(np.cbrt(abs(np.linalg.det(self.transform[:3, :3]))))
        inv = np.linalg.inv(self.transform)
        # the model's own box: ``fast`` shrinks it to the visual hull, so exports spend their cells on the object
        box = model.aabb.detach().cpu().numpy() if self.bounded else np.array([[-1.0] * 3, [1.0] * 3])
        corners = np.stack([box[[i, j, k], [0, 1, 2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        world = corners @ inv[:3, :3].T + inv[:3, 3]
        self.aabb = torch.tensor(np.stack([world.min(0), world.max(0)]), dtype=torch.float32)
        self._last: tuple[tuple, np.ndarray] | None = None

    def _to_model(self, points: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(self.transform, dtype=torch.float32, device=self.device)
        return points.to(self.device, torch.float32) @ t[:3, :3].T + t[:3, 3]

    @torch.no_grad()
    def density(self, points: torch.Tensor) -> torch.Tensor:
        """Volume density [N] per world unit at world points [N,3]."""
        return self.model.query_density(self._to_model(points)).cpu() * self._scale

    @torch.no_grad()
    def color(self, points: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """Colour [N,3] in [0,1] seen along world directions ``dirs`` [N,3]."""
        d = torch.nn.functional.normalize(dirs.to(self.device, torch.float32), dim=-1)
        return self.model.query_color(self._to_model(points), d).cpu()

    @property
    def has_background(self) -> bool:
        """Whether the scene reaches beyond ``aabb`` and can be drawn with that box left out (``tracer``): an
        unbounded capture on a grid model (``layers.without``)."""
        return not self.bounded and hasattr(self.model, "warp") and hasattr(self.model, "density")

    def tracer(self, hide: np.ndarray | None = None, chunk: int = 16384) -> RayTrace:
        """Rays through the field (see ``RayTrace``), with the density inside the world box ``hide`` [2,3] left
        out: an export's background is drawn with its foreground taken away (``layers.without``)."""
        model = self.model
        if hide is not None:
            box = torch.as_tensor(np.asarray(hide, dtype=np.float64), dtype=torch.float32)
            inv = torch.as_tensor(np.linalg.inv(self.transform), dtype=torch.float32)

            def inside(points: torch.Tensor) -> torch.Tensor:
                world = points.cpu() @ inv[:3, :3].T + inv[:3, 3]
                return ((world >= box[0]) & (world <= box[1])).all(1).to(points.device)

            model = without(self.model, inside)
            model.eval()
        t = torch.as_tensor(self.transform, dtype=torch.float32)
        black = torch.zeros(3, device=self.device)

        @torch.no_grad()
        def trace(origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            o = torch.as_tensor(np.asarray(origins), dtype=torch.float32) @ t[:3, :3].T + t[:3, 3]
            d = torch.nn.functional.normalize(torch.as_tensor(np.asarray(dirs), dtype=torch.float32) @ t[:3, :3].T, dim=-1)
            rgb, acc, dist = [], [], []
            for i in range(0, o.shape[0], chunk):
                out = model.render_rays(o[i:i + chunk].to(self.device), d[i:i + chunk].to(self.device), black)
                a = out["acc"].float().cpu()
                keep = a.clamp(min=1e-6)
                rgb.append((out["rgb"].float().cpu() / keep[:, None]).clamp(0, 1))
                acc.append(a)
                dist.append(out["depth"].float().cpu() / keep / self._scale)
            return torch.cat(rgb).numpy(), torch.cat(acc).numpy(), torch.cat(dist).numpy()

        return trace

    def render(self, camera: Camera, background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
        """[H,W,3] float32 image of a world-frame camera; the last image is reused for an identical request."""
        key = (np.asarray(camera.c2w).tobytes(), camera.fx, camera.fy, camera.cx, camera.cy, camera.width,
               camera.height, tuple(camera.distortion), tuple(background))
        if self._last is None or self._last[0] != key:
            self._last = (key, render_camera(self.model, camera, self.transform, background, self.device))
        return self._last[1]


def load_field(run_dir: str | Path, device: str = "auto") -> LoadedField:
    """The newest checkpoint of ``run_dir`` as a ``LoadedField`` (cached until a newer checkpoint appears) on
    ``device``: ``auto`` is a GPU when one is visible now, wherever the run was trained."""
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise NotFoundError(f"{run_dir} has no checkpoint yet", path=str(run_dir))
    key = (str(Path(run_dir).resolve()), str(ckpt), ckpt.stat().st_mtime, device)
    if key not in _CACHE:
        read_run_config(run_dir)
        state = load_checkpoint(ckpt)
        cfg = TrainConfig.from_json(state["config"])
        dev = resolve_device(device, cfg.threads)
        model = build_model(cfg, state["scene"])
        model.load_state_dict(state["model"])
        if hasattr(model, "update_occupancy"):
            model.update_occupancy()
        _CACHE.clear()
        model.to(dev)
        _CACHE[key] = LoadedField(model, state["scene"], dev, int(state["step"]))
    return _CACHE[key]
