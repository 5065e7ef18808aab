"""Jupyter widgets: ``StudioApp`` (everything), ``ProjectBrowser``, ``ImageUploader``.

Each widget action is exactly one call of the Python API (``nerf_widgets.Studio`` / ``Project``);
errors are shown inline in the widget, never as a traceback in the cell.
"""

from nerf_widgets.widgets.app import PANELS, PanelSpec, StudioApp
from nerf_widgets.widgets.download import download_link, show_download
from nerf_widgets.widgets.image_uploader import ImageUploader
from nerf_widgets.widgets.panel import PanelMixin, StudioContext
from nerf_widgets.widgets.project_browser import ProjectBrowser

__all__ = ["PANELS", "ImageUploader", "PanelMixin", "PanelSpec", "ProjectBrowser", "StudioApp", "StudioContext",
           "download_link", "show_download"]
