"""nerf_widgets: photos to 3D inside a Jupyter notebook.

``from nerf_widgets import Studio`` is the Python API; the widgets live in ``nerf_widgets.widgets``.
Names are resolved lazily so ``import nerf_widgets`` stays light (no torch, no PIL).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Studio": "nerf_widgets.studio",
    "Project": "nerf_widgets.studio",
    "StudioApp": "nerf_widgets.widgets",
    "ProjectBrowser": "nerf_widgets.widgets",
    "ImageUploader": "nerf_widgets.widgets",
}

if TYPE_CHECKING:
    from nerf_widgets.studio import Project, Studio


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nerf_widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["Project", "Studio", "__version__"]
