"""Every notebook in notebooks/ runs headless, top to bottom, against a temporary studio home.

Cells tagged ``install`` (colab.ipynb's ``%pip install`` from the repository) are left out: here the package
is already installed, and the tests never download it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# real_capture.ipynb as it stands runs COLMAP on fountain_p11's 11 full-size photos and trains 3 minutes (its
# benchmark is tests/bench/region_fountain.py). Here it runs on photos the test makes: a textured sphere and box
# seen by 16 cameras on two rings, on a grey background, through the same cells (COLMAP, region, training,
# export). Steps, not minutes, end the training, so a busy machine trains the same run.
SMALL_CAPTURE = {"REAL_CAPTURE_STEPS": "300", "REAL_CAPTURE_RAYS": "1024", "REAL_CAPTURE_MINUTES": "60",
                 "REAL_CAPTURE_RESOLUTION": "64"}
CELL_TIMEOUT = {"real_capture.ipynb": 1800}  # a failure guard per cell (COLMAP, the training); others: 300 s


def _capture(folder: Path) -> Path:
    """Opaque JPEG photos of the pose tests' synthetic scene in ``folder/images`` (no masks, as people's)."""
    from PIL import Image

    from tests.poses.poses_synthetic import make_scene

    make_scene(folder / "rgba", n=16, size=200, focal=220.0)
    (folder / "images").mkdir()
    for png in sorted((folder / "rgba").glob("*.png")):
        with Image.open(png) as im:
            photo = Image.new("RGB", im.size, (128, 128, 128))
            photo.paste(im, mask=im.getchannel("A"))
            photo.save(folder / "images" / f"{png.stem}.jpg", quality=95)
    return folder


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("NERF_WIDGETS_HOME", str(home))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    if path.name == "real_capture.ipynb":
        monkeypatch.setenv("REAL_CAPTURE_DATA", str(_capture(tmp_path / "capture")))
        for key, value in SMALL_CAPTURE.items():
            monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "install" not in c.metadata.get("tags", [])]
    NotebookClient(nb, timeout=CELL_TIMEOUT.get(path.name, 300), kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert (home / "studio.db").is_file(), "the notebook did not use NERF_WIDGETS_HOME"
    if path.name == "real_capture.ipynb":  # the whole scene's export carries the room around the object
        printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        faces = re.search(r"background: \{'faces': (\d+)", printed)
        assert faces is not None and int(faces.group(1)) > 0, "the whole scene's export made no background"


def test_quickstart_exists() -> None:
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


def test_colab_notebook_installs_from_the_repository() -> None:
    """Only colab.ipynb's first code cell is skipped above: it pip-installs the package from a git URL."""
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "colab.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "install" in c.metadata.get("tags", [])]
    assert tagged == code[:1]
    assert "%pip install" in code[0].source and "git+https://" in code[0].source
    assert all("pip install" not in c.source for c in code[1:])
