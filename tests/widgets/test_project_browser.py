"""ProjectBrowser: buttons clicked for real, results checked in the studio's database."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from nerf_widgets.studio import Studio
from nerf_widgets.widgets import ProjectBrowser

XSS = "<img src=x onerror=alert(1)>"


def buttons(browser: ProjectBrowser, css: str) -> list[w.Button]:
    found = []
    for row in browser.rows.children:
        for child in getattr(row, "children", ()):
            if isinstance(child, w.Button) and css in child._dom_classes:
                found.append(child)
    return found


def test_create_validates_inline_and_stores_nothing(studio: Studio) -> None:
    browser = ProjectBrowser(studio)
    browser.name_box.value = "   "
    browser.create_button.click()
    assert "name is empty" in browser.notice.value and "nw-error" in browser.notice.value
    assert studio.projects() == []
    browser.name_box.value = "x" * 101
    browser.create_button.click()
    assert "limit is 100" in browser.notice.value and studio.projects() == []


def test_create_opens_and_lists_with_state(studio: Studio) -> None:
    browser = ProjectBrowser(studio)
    browser.name_box.value, browser.description_box.value = "Lego", "bulldozer"
    browser.create_button.click()
    (project,) = studio.projects()
    assert (project.name, project.description) == ("Lego", "bulldozer")
    assert browser.context is not None and browser.context.project.id == project.id
    assert browser.name_box.value == "" and "Created project" in browser.notice.value
    row_html = browser.rows.children[0].children[0].value
    assert "Lego" in row_html and "[Created]" in row_html
    browser.name_box.value = "lego"
    browser.create_button.click()
    assert "already" in browser.notice.value.lower() and len(studio.projects()) == 1


def test_user_text_is_escaped(studio: Studio) -> None:
    studio.create_project(XSS, description='"><script>alert(2)</script>')
    browser = ProjectBrowser(studio)
    html = browser.rows.children[0].children[0].value
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>" not in html
    buttons(browser, "nw-delete")[0].click()
    confirm_html = browser.rows.children[0].children[0].value
    assert "&lt;img" in confirm_html and "<img" not in confirm_html


def test_delete_needs_confirmation(studio: Studio) -> None:
    keep, drop = studio.create_project("keep"), studio.create_project("drop")
    browser = ProjectBrowser(studio)
    browser.open_project(drop.id)
    delete_drop = next(b for b, p in zip(buttons(browser, "nw-delete"), studio.projects(), strict=True) if p.id == drop.id)
    delete_drop.click()
    assert len(studio.projects()) == 2 and len(buttons(browser, "nw-confirm-delete")) == 1
    buttons(browser, "nw-cancel-delete")[0].click()
    assert buttons(browser, "nw-confirm-delete") == [] and len(studio.projects()) == 2
    delete_drop = next(b for b, p in zip(buttons(browser, "nw-delete"), studio.projects(), strict=True) if p.id == drop.id)
    delete_drop.click()
    buttons(browser, "nw-confirm-delete")[0].click()
    assert [p.id for p in studio.projects()] == [keep.id]
    assert not studio.project_dir(drop.id).exists()
    assert browser.context is not None and browser.context.project is None


def test_deleted_elsewhere_shows_error_not_traceback(studio: Studio) -> None:
    project = studio.create_project("gone")
    browser = ProjectBrowser(studio)
    studio.delete_project(project.id)
    buttons(browser, "nw-open")[0].click()
    assert "nw-error" in browser.notice.value and project.id in browser.notice.value


def test_default_home_from_environment(monkeypatch: Any, tmp_path: Any) -> None:
    monkeypatch.setenv("NERF_WIDGETS_HOME", str(tmp_path / "envhome"))
    browser = ProjectBrowser()
    assert browser.studio.home == (tmp_path / "envhome").resolve()
