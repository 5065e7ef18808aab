"""The Python API: ``Studio`` (projects) and ``Project`` (images, later poses, training, export)."""

from nerf_widgets.studio.project import Project
from nerf_widgets.studio.studio import Studio

__all__ = ["Project", "Studio"]
