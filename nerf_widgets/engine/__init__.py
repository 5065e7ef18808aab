"""NeRF engine: data -> rays -> fields -> samplers/renderer -> models (vanilla, fast) -> trainer.

Everything is imported lazily so ``import nerf_widgets.engine`` does not import torch.
Public entry points: ``train``, ``load_field``, ``render_cameras``, ``evaluate_run``, ``render_orbit_video``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "StepInfo": "callbacks",
    "EvalInfo": "callbacks",
    "TrainCallbacks": "callbacks",
    "NullCallbacks": "callbacks",
    "CallbackList": "callbacks",
    "TrainConfig": "config",
    "make_config": "config",
    "PRESETS": "config",
    "METHODS": "config",
    "resolve_device": "config",
    "Camera": "rays",
    "Dataset": "data",
    "load_dataset": "data",
    "load_cameras": "data",
    "train": "trainer",
    "TrainResult": "trainer",
    "load_field": "field",
    "LoadedField": "field",
    "render_cameras": "evaluate",
    "evaluate_run": "evaluate",
    "render_orbit_video": "video",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nerf_widgets.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nerf_widgets.engine.{module}"), name)
    globals()[name] = value
    return value
