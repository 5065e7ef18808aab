"""Every notebook in notebooks/ runs headless, top to bottom, against a temporary studio home."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

LONG_RUNNING = {"real_capture.ipynb"}  # COLMAP + minutes of training on real photos: run by hand (see its text)
NOTEBOOKS = sorted(p for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")
                   if p.name not in LONG_RUNNING)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("NERF_WIDGETS_HOME", str(home))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert (home / "studio.db").is_file(), "the notebook did not use NERF_WIDGETS_HOME"


def test_quickstart_exists() -> None:
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)
