"""Model registry: builds ``fast`` or ``vanilla`` from a config and the scene description."""

from __future__ import annotations

from typing import Any

import torch

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.config import TrainConfig
from nerf_widgets.engine.data import Dataset

__all__ = ["build_model", "scene_dict"]


def scene_dict(data: Dataset) -> dict[str, Any]:
    """What a model needs to know about the scene, JSON-friendly (stored in config.json and checkpoints)."""
    return {"transform": data.transform.tolist(), "aabb": data.aabb.tolist(), "bounded": bool(data.bounded),
            "near": float(data.near)}


def build_model(cfg: TrainConfig, scene: dict[str, Any]) -> torch.nn.Module:
    aabb = torch.tensor(scene["aabb"], dtype=torch.float32)
    if cfg.method == "fast":
        from nerf_widgets.engine.fast import FastModel

        return FastModel(aabb, scene["bounded"], scene["near"], cfg.model)
    if cfg.method == "vanilla":
        from nerf_widgets.engine.vanilla import VanillaModel

        return VanillaModel(aabb, scene["bounded"], scene["near"], cfg.model)
    raise ValidationError(f"unknown method {cfg.method!r}")
