"""Model registry: builds ``fast`` or ``vanilla`` from a config and the scene description."""

from __future__ import annotations

from typing import Any, Protocol, cast

import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.config import TrainConfig
from nerf_widgets.engine.data import Dataset

__all__ = ["RadianceModel", "build_model", "scene_dict"]


class RadianceModel(Protocol):
    """What the trainer, renderer and ``load_field`` need from a method (``FastModel``, ``VanillaModel``)."""

    aabb: torch.Tensor

    def render_rays(self, origins: torch.Tensor, dirs: torch.Tensor, background: torch.Tensor,
                    jitter: torch.Tensor | None = None, image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``image``: training-view index of each ray (per-view appearance); None renders the shared appearance."""
        ...

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, the photometric MSE reported as training PSNR); the model owns its loss."""
        ...

    def before_step(self, step: int) -> None: ...

    def warm_up(self) -> None:
        """Build whatever is built on first use (compiled kernels) now, before the training clock starts."""
        ...

    def param_groups(self, lr: float) -> list[dict[str, Any]]: ...

    def grid_step(self, lr: float) -> None: ...

    def query_density(self, pts: torch.Tensor) -> torch.Tensor: ...

    def query_color(self, pts: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...

    def to(self, device: torch.device) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


def scene_dict(data: Dataset) -> dict[str, Any]:
    """What a model needs to know about the scene, JSON-friendly (stored in config.json and checkpoints)."""
    scene = {"transform": data.transform.tolist(), "aabb": data.aabb.tolist(), "bounded": bool(data.bounded),
             "near": float(data.near), "views": len(data.split("train"))}
    if data.t_lin is not None:  # a region moved the cameras away from the unit ball (data.region_normalization)
        scene["t_lin"] = float(data.t_lin)
    return scene


def build_model(cfg: TrainConfig, scene: dict[str, Any]) -> RadianceModel:
    aabb = torch.tensor(scene["aabb"], dtype=torch.float32)
    if cfg.method == "fast":
        from nerf_widgets.engine.fast import FastModel

        options = cfg.model if "t_lin" not in scene else {"t_lin": scene["t_lin"], **cfg.model}
        return cast(RadianceModel, FastModel(aabb, scene["bounded"], scene["near"], options,
                                                int(scene.get("views", 0))))
    if cfg.method == "vanilla":
        from nerf_widgets.engine.vanilla import VanillaModel

        return cast(RadianceModel, VanillaModel(aabb, scene["bounded"], scene["near"], cfg.model))
    raise ValidationError(f"unknown method {cfg.method!r}")
