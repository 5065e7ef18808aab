"""Training configuration: one dataclass, a per-method default set, presets and device choice (precision:
``engine.precision``, re-exported here for the models).

``make_config(method, preset, **overrides)`` is what the CLI, jobs and benchmark call. The config is
written to ``RUN/config.json`` and read back on resume, so it only holds JSON-friendly values.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from nerf_widgets.core.devices import normalize_device, pick_device
from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.precision import bf16_native, check_precision, network_autocast

__all__ = ["METHODS", "PRESETS", "TrainConfig", "autocast_bf16", "bf16_native", "check_precision", "make_config", "resolve_device"]

METHODS = ("fast", "vanilla")
PRESETS = ("quick", "balanced", "quality")


@dataclass
class TrainConfig:
    """Everything that decides a run. Budgets: whichever of ``max_steps`` / ``max_minutes`` comes first."""

    method: str = "fast"
    preset: str = "balanced"
    max_steps: int = 20000
    max_minutes: float | None = None
    batch_rays: int = 4096
    grad_accum: int = 1
    lr: float = 5e-3  # network (MLP) learning rate; grids use ``grid_lr``
    grid_lr: float = 0.1
    warmup_steps: int = 100
    lr_final_ratio: float = 0.05  # exponential decay to lr * ratio at max_steps
    background: str = "random"  # for RGBA data: random | white | black
    eval_every: int = 1000
    eval_views: int = 1  # held-out views rendered per evaluation
    eval_max_side: int = 200  # evaluation renders are downscaled to this long side (speed)
    early_stop_window: int = 0  # evaluations without improvement before stopping; 0 = never
    checkpoint_every: int = 2000
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # 0 = all cores
    model: dict[str, Any] = field(default_factory=dict)  # method-specific knobs (see models)
    # The project's region of interest (core.region.Region.to_dict: center, size, rotation, floor_cut), in the
    # poses' normalised frame; None = none set. It decides the model frame (data.apply_region): an unbounded
    # scene's uncontracted ball holds the region, a bounded scene's box is cut to it.
    region: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_PRESET_VALUES: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {
        "quick": {"max_steps": 1500, "max_minutes": 3.0, "eval_every": 500, "checkpoint_every": 500},
        # step caps above what 2 CPU cores reach in the minutes (lego ~460 steps/min, real captures fewer), so a
        # preset means its minutes for every kind of scene on a CPU; faster machines stop at the cap
        "balanced": {"max_steps": 8000, "max_minutes": 15.0, "eval_every": 1000, "checkpoint_every": 1000},
        "quality": {"max_steps": 24000, "max_minutes": 45.0, "eval_every": 2000, "checkpoint_every": 2000},
    },
    "vanilla": {
        "quick": {"max_steps": 2000, "max_minutes": 10.0, "batch_rays": 512},
        "balanced": {"max_steps": 20000, "max_minutes": 120.0, "batch_rays": 1024},
        "quality": {"max_steps": 200000, "max_minutes": None, "batch_rays": 1024},
    },
}
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "fast": {"lr": 5e-3, "grid_lr": 0.1, "batch_rays": 4096},
    "vanilla": {"lr": 5e-4, "warmup_steps": 20, "lr_final_ratio": 0.1, "eval_every": 2500, "checkpoint_every": 2500},
}


def make_config(method: str = "fast", preset: str = "balanced", **overrides: Any) -> TrainConfig:
    """Method defaults, then the preset's budgets, then explicit overrides (``None`` values are ignored)."""
    if method not in METHODS:
        raise ValidationError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if preset not in PRESETS:
        raise ValidationError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values: dict[str, Any] = {"method": method, "preset": preset}
    values.update(_METHOD_DEFAULTS[method])
    values.update(_PRESET_VALUES[method][preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig.from_json(values)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValidationError(f"unknown config fields: {', '.join(sorted(unknown))}")
    if cfg.max_steps < 1 or cfg.batch_rays < 1 or cfg.grad_accum < 1:
        raise ValidationError("max_steps, batch_rays and grad_accum must be positive")
    if cfg.background not in ("random", "white", "black"):
        raise ValidationError(f"background must be random, white or black, not {cfg.background!r}")
    normalize_device(cfg.device)  # a misspelt device fails here; whether it is present is checked at run time
    return cfg


def resolve_device(requested: str = "auto", threads: int = 0) -> Any:
    """The ``torch.device`` a run uses, by the rule jobs reserve with (``core.devices.choose_device``): ``auto`` ->
    ``cuda:0`` when PyTorch sees a GPU, else the CPU with one thread per core; a GPU request without one is
    refused with why (``ResourceUnavailableError``)."""
    import torch

    device = torch.device(pick_device(requested))
    if device.type == "cpu":
        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    return device


def autocast_bf16(device: Any, mode: str = "auto") -> Any:
    """``fast``'s network autocast (bfloat16 where native, else float32); see ``engine.precision``."""
    return network_autocast(device, mode, "fast")
