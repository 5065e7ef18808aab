"""StudioApp: tabs built from the panel registry share one current project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest

from nerf_widgets.studio import Studio
from nerf_widgets.widgets import PANELS, ImageUploader, PanelSpec, ProjectBrowser, StudioApp


def test_tabs_follow_the_registry(home: Path) -> None:
    app = StudioApp(home=home)
    titles = ["Projects", "Images", "Poses", "Training", "System", "Export"]
    assert [spec.title for spec in PANELS] == titles
    assert list(app.tabs.titles) == titles and list(app.panels) == titles  # every tab, none cut off
    kinds = {title: type(panel).__name__ for title, panel in app.panels.items()}
    assert kinds == {"Projects": "ProjectBrowser", "Images": "ImageUploader", "Poses": "PoseViewer",
                     "Training": "TrainingPanel", "System": "SystemMonitor", "Export": "ExportPanel"}
    assert list(app.tabs.children) == list(app.panels.values())
    assert isinstance(app.panels["Projects"], ProjectBrowser)
    assert isinstance(app.panels["Images"], ImageUploader)
    assert app.studio.home == home.resolve() and "no project open" in app.header.value


def test_opening_a_project_reaches_every_panel(studio: Studio, make_image: Any) -> None:
    app = StudioApp(studio=studio)
    browser, uploader = app.panels["Projects"], app.panels["Images"]
    assert isinstance(browser, ProjectBrowser) and isinstance(uploader, ImageUploader)
    browser.name_box.value = "<b>bold</b>"
    browser.create_button.click()
    assert uploader.project_id == app.project.id and uploader.project_name == "<b>bold</b>"
    assert "&lt;b&gt;bold&lt;/b&gt;" in app.header.value and "[Created]" in app.header.value
    assert app.tabs.selected_index == 1
    uploader.upload([("a.png", make_image(1))])
    assert "[ImagesUploaded]" in app.header.value
    assert "[ImagesUploaded]" in browser.rows.children[0].children[0].value


def test_a_broken_panel_shows_its_error_in_its_tab(home: Path) -> None:
    app = StudioApp(home=home, panels=[*PANELS, PanelSpec("Broken", "nerf_widgets.widgets.no_such_module:Panel")])
    broken = app.panels["Broken"]
    assert isinstance(broken, w.HTML) and "could not be built" in broken.value
    assert "no_such_module" in broken.value


def test_open_unknown_project_is_inline(home: Path) -> None:
    app = StudioApp(home=home)
    app.open_project("prj_0123456789abcdef")
    assert "nw-error" in app.notice.value and app.project is None


def test_home_and_studio_are_exclusive(studio: Studio, home: Path) -> None:
    with pytest.raises(TypeError, match="either home= or studio=, not both"):
        StudioApp(home, studio=studio)


def test_front_end_files_are_found_and_missing_ones_named() -> None:
    from nerf_widgets.core.errors import ResourceUnavailableError
    from nerf_widgets.widgets.common import asset_path

    esm = asset_path("image_uploader.js")
    assert esm.is_file() and "export default" in esm.read_text()
    assert str(ImageUploader._esm) == esm.read_text()  # anywidget got the module text, not a path string
    with pytest.raises(ResourceUnavailableError, match="no_such.js"):
        asset_path("no_such.js")
