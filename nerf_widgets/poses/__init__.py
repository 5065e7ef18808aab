"""Camera poses: COLMAP structure from motion via pycolmap, imports of existing poses, normalisation.

Public names are loaded lazily so importing the package pulls in neither pycolmap nor scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CameraPrior",
    "ImageOutcome",
    "Intrinsics",
    "PoseProgress",
    "PoseReport",
    "PosedFrame",
    "estimate_poses",
    "import_poses",
    "load_report",
    "normalize_scene",
    "umeyama",
]

_WHERE = {
    "CameraPrior": "types",
    "ImageOutcome": "types",
    "Intrinsics": "types",
    "PoseProgress": "types",
    "PoseReport": "types",
    "PosedFrame": "types",
    "estimate_poses": "estimate",
    "import_poses": "imports",
    "load_report": "imports",
    "normalize_scene": "geometry",
    "umeyama": "geometry",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nerf_widgets.poses' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nerf_widgets.poses.{_WHERE[name]}"), name)
