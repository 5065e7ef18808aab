"""Export: density/colour callables + bounds -> marching cubes -> cleanup -> UV (xatlas) -> bake -> formats.

Never imports the engine; takes plain callables (see ``export_field``). Imports are lazy so that
``import nerf_widgets.export`` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "export_field": "pipeline",
    "run_export": "pipeline",
    "zip_files": "pipeline",
    "ExportProgress": "pipeline",
    "ExportResult": "pipeline",
    "ExportRequest": "request",
    "make_request": "request",
    "FORMATS": "request",
    "COMPRESSIONS": "request",
    "LIMITS": "request",
    "PRESETS": "request",
    "STAGES": "request",
    "SphereBoxField": "analytic",
    "PhotoView": "views",
    "DEFAULT_REFINE_MINUTES": "request",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nerf_widgets.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nerf_widgets.export.{module}"), name)
    globals()[name] = value
    return value
