"""Training configuration: one dataclass, a per-method default set, presets and device choice.

``make_config(method, preset, **overrides)`` is what the CLI, jobs and benchmark call. The config is
written to ``RUN/config.json`` and read back on resume, so it only holds JSON-friendly values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import ResourceUnavailableError, ValidationError

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
    return cfg


def resolve_device(requested: str = "auto", threads: int = 0) -> Any:
    """``auto`` -> CUDA when available, else CPU with one thread per core. Returns a ``torch.device``."""
    import torch

    if requested not in ("auto", "cpu", "cuda") and not requested.startswith("cuda:"):
        raise ValidationError(f"unknown device {requested!r}; use auto, cpu or cuda")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ResourceUnavailableError("CUDA was requested but no CUDA device is available")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cpu":
        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    return device


@functools.cache
def bf16_native(device: Any) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware (Ampere or newer GPUs; CPUs with AVX512-BF16 or AMX).
    Mixed precision pays only there: emulated bfloat16 is slower than float32. bfloat16 keeps float32's
    range, so no loss scaling is needed (float16 would underflow the tiny per-sample colour gradients)."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_bf16(device: Any, mode: str = "auto") -> Any:
    """Context for network forwards: ``auto`` = bfloat16 autocast on CUDA devices with native bfloat16,
    ``bf16`` = also on native CPUs, ``off`` = float32. CPUs stay float32 under ``auto`` because training
    measured slower there (lego, 5 min: 1982 steps in bfloat16 vs 2170 in float32, and 3.7 vs 2.3 GiB:
    oneDNN builds a primitive for every new batch shape). Callers cast outputs back to float32."""
    import torch

    check_precision(mode)
    if mode == "bf16" or (mode == "auto" and device.type == "cuda"):
        if bf16_native(device):
            return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_precision(mode: Any) -> None:
    """Models call this on construction, so a bad ``mixed_precision`` option fails before training starts."""
    if mode not in ("auto", "bf16", "off"):
        raise ValidationError(f"mixed_precision must be auto, bf16 or off, not {mode!r}")
