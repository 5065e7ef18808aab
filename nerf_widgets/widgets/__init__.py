"""Jupyter widgets: ``StudioApp`` (everything), ``ProjectBrowser``, ``ImageUploader``.

Each widget action is exactly one call of the Python API (``nerf_widgets.Studio`` / ``Project``);
errors are shown inline in the widget, never as a traceback in the cell. Works with ipywidgets 7.7 and 8
(``compat``); in Colab, importing this package enables Colab's custom widget manager for pythreejs and bqplot.
"""

from nerf_widgets.widgets.app import PANELS, PanelSpec, StudioApp
from nerf_widgets.widgets.compat import enable_colab_widgets
from nerf_widgets.widgets.download import download_link, show_download
from nerf_widgets.widgets.image_uploader import ImageUploader
from nerf_widgets.widgets.panel import PanelMixin, StudioContext
from nerf_widgets.widgets.project_browser import ProjectBrowser

enable_colab_widgets()  # before any widget of this package is displayed

__all__ = ["PANELS", "ImageUploader", "PanelMixin", "PanelSpec", "ProjectBrowser", "StudioApp", "StudioContext",
           "download_link", "show_download"]
