"""The one download link: relative below the notebook folder, inlined elsewhere, a path when too large."""

from __future__ import annotations

import base64
from pathlib import Path

import ipywidgets
import pytest
from IPython.display import HTML

from nerf_widgets.widgets import download
from nerf_widgets.widgets.download import download_html, download_link, in_notebook, show_download


@pytest.fixture
def glb(tmp_path: Path) -> Path:
    path = tmp_path / "out dir" / "scene.glb"
    path.parent.mkdir()
    path.write_bytes(b"glTF" + bytes(60))
    return path


def test_download_link_inside_and_outside_the_notebook_folder(glb: Path, tmp_path: Path) -> None:
    inside = download_link(glb, cwd=tmp_path)
    assert isinstance(inside, HTML) and 'href="out%20dir/scene.glb"' in inside.data
    assert 'download="scene.glb"' in inside.data and "base64" not in inside.data
    outside = download_link(glb, cwd=tmp_path / "elsewhere")
    assert isinstance(outside, ipywidgets.HTML)
    data = outside.value.split("base64,")[1].split('"')[0]
    assert base64.b64decode(data) == glb.read_bytes()


def test_files_over_the_one_limit_are_shown_as_a_path(glb: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "INLINE_LINK_BYTES", glb.stat().st_size - 1)
    html = download_html(glb, cwd=tmp_path / "elsewhere")
    assert "base64" not in html and f"<code>{glb}</code>" in html and "copy it from there" in html


def test_show_download_displays_only_when_asked_or_in_a_notebook(glb: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert not in_notebook()
    assert show_download(glb) == glb and capsys.readouterr().out == ""  # a script: nothing displayed
    show_download(glb, show=True)
    assert "HTML" in capsys.readouterr().out  # plain IPython display falls back to the repr


@pytest.mark.slow
def test_show_download_shows_a_link_in_a_real_kernel(tmp_path: Path) -> None:
    """In a Jupyter kernel the link is displayed without asking (outside one, ``show=None`` displays nothing)."""
    import nbformat
    from nbclient import NotebookClient

    code = ("from pathlib import Path\nfrom nerf_widgets.widgets import show_download\n"
            "from nerf_widgets.widgets.download import in_notebook\n"
            "p = Path('scene.glb'); p.write_bytes(b'glTF')\nprint(in_notebook()); show_download(p.resolve())")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert outputs[0]["text"].strip() == "True"
    assert 'href="scene.glb" download="scene.glb"' in outputs[1]["data"]["text/html"]
