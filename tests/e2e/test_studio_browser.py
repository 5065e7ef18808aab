"""End to end in a real browser: JupyterLab + headless Chromium run the quickstart notebook, then a
person's steps: create a project, upload images through the uploader, see the thumbnails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from nerf_widgets.studio import Studio
from tests.e2e.lab_harness import REPO, open_browser, run_notebook, running_lab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
XSS = "<img src=x onerror=alert(1)>.png"
ARTIFACTS = REPO / "tests" / "artifacts"


def png(seed: int, blur: float = 0.0) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((320, 240), Image.NEAREST)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def files() -> list[dict[str, Any]]:
    good = [{"name": f"photo_{i}.png", "mimeType": "image/png", "buffer": png(i)} for i in range(3)]
    return [*good,
            {"name": XSS, "mimeType": "image/png", "buffer": png(10)},
            {"name": "soft.png", "mimeType": "image/png", "buffer": png(11, blur=12.0)},
            {"name": "notes.png", "mimeType": "image/png", "buffer": b"this is text, not a picture"},
            {"name": "large.png", "mimeType": "image/png", "buffer": noise_png(1100, 900)}]  # ~2.8 MiB: 3 chunks


def noise_png(width: int, height: int) -> bytes:
    """Incompressible, so the PNG spans several 1 MiB chunks."""
    pixels = np.random.default_rng(99).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def test_studio_in_jupyterlab(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with running_lab(tmp_path, [REPO / "notebooks" / "quickstart.ipynb"]) as lab, open_browser() as page:
        try:
            person_uses_the_studio(page, lab)
            studio_renders_in_notebook7(page.context.browser.new_page(viewport={"width": 1400, "height": 1000}), lab)
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "e2e_failure.png"), full_page=True)
            raise


def person_uses_the_studio(page: Any, lab: Any) -> None:
    """Run the notebook, create a project in the UI, upload six files, check grid, badges and escaping."""
    run_notebook(page, lab, "quickstart.ipynb", done_text="Project(id=", timeout_s=90)
    studio_el = page.locator(".nw-studio")
    studio_el.wait_for()
    assert "Quickstart" in studio_el.locator(".nw-current-project").inner_text()

    page.locator(".nw-studio .lm-TabBar-tab", has_text="Projects").click()
    page.locator(".nw-create-name input").fill("Browser <b>test</b>")
    page.locator("button.nw-create").click()
    studio_el.locator(".nw-current-project", has_text="Browser <b>test</b>").wait_for()
    uploader = page.locator(".nw-studio .nw-uploader")
    uploader.locator(".nw-header .nw-project", has_text="Browser <b>test</b>").wait_for()

    uploader.locator("input.nw-file-input").set_input_files(files())
    thumbs = uploader.locator(".nw-thumb img.nw-thumb-img")
    page.wait_for_function("document.querySelectorAll('.nw-studio .nw-thumb img.nw-thumb-img').length === 6",
                           timeout=30_000)
    names = uploader.locator(".nw-thumb-name").all_inner_texts()
    assert sorted(names) == sorted(["photo_0.png", "photo_1.png", "photo_2.png", XSS, "soft.png", "large.png"])
    assert thumbs.first.evaluate("img => img.complete && img.naturalWidth") == 256
    assert page.locator("img[src='x']").count() == 0 and page.dialogs == []  # type: ignore[attr-defined]
    blurry = uploader.locator(".nw-thumb", has=page.locator(".nw-badge-blurry"))
    assert blurry.locator(".nw-thumb-name").inner_text() == "soft.png"
    rejected = uploader.locator(".nw-result[data-status='rejected']")
    assert "notes.png" in rejected.inner_text()
    assert uploader.locator(".nw-file[data-status='rejected'] .nw-file-name").inner_text() == "notes.png"

    studio_el.scroll_into_view_if_needed()
    studio_el.screenshot(path=str(ARTIFACTS / "e2e_studio.png"))
    page.screenshot(path=str(ARTIFACTS / "e2e_page.png"), full_page=True)

    drop_a_file(page, uploader, "dropped.png", png(20))
    page.wait_for_function("document.querySelectorAll('.nw-studio .nw-thumb img.nw-thumb-img').length === 7",
                           timeout=30_000)

    with Studio(lab.home) as studio:
        (project,) = [p for p in studio.projects() if p.name == "Browser <b>test</b>"]
        assert sorted(i.original_name for i in project.images()) == sorted([*names, "dropped.png"])
        assert project.state == "ImagesUploaded"
    assert not any((lab.home / "staging").iterdir())


def drop_a_file(page: Any, uploader: Any, name: str, data: bytes) -> None:
    """Drag-and-drop as the browser delivers it: a drop event carrying a DataTransfer with a File."""
    transfer = page.evaluate_handle(
        """([name, bytes]) => { const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, { type: "image/png" })); return dt; }""",
        [name, list(data)])
    uploader.locator(".nw-drop").dispatch_event("drop", {"dataTransfer": transfer})


def studio_renders_in_notebook7(page: Any, lab: Any) -> None:
    """The same notebook in Notebook 7's UI: running the first cell shows a working studio."""
    page.goto(f"{lab.url}/notebooks/quickstart.ipynb?token={lab.token}")
    first = page.locator(".jp-Notebook .jp-CodeCell").first
    first.wait_for(timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=60_000)
    first.click()
    page.keyboard.press("Shift+Enter")
    page.locator(".nw-studio .nw-project-browser").wait_for(timeout=60_000)
    names = page.locator(".nw-studio .nw-project-name").all_inner_texts()
    assert "Browser <b>test</b>" in names and "Quickstart" in names
    page.screenshot(path=str(ARTIFACTS / "e2e_notebook7.png"))
