"""Leaf layer: settings, errors, ids and safe paths. Imports nothing else from the package."""

from nerf_widgets.core.errors import (
    CancelledError,
    DuplicateImageError,
    NerfWidgetsError,
    NotFoundError,
    ResourceUnavailableError,
    StateConflictError,
    ValidationError,
)
from nerf_widgets.core.ids import new_id, validate_id
from nerf_widgets.core.paths import safe_join
from nerf_widgets.core.settings import Settings, load_settings

__all__ = [
    "CancelledError",
    "DuplicateImageError",
    "NerfWidgetsError",
    "NotFoundError",
    "ResourceUnavailableError",
    "Settings",
    "StateConflictError",
    "ValidationError",
    "load_settings",
    "new_id",
    "safe_join",
    "validate_id",
]
