"""ipywidgets 7.7 / 8 differences and Colab's widget manager (nerf_widgets/widgets/compat.py).

The 7.7 checks run in ``.venv-compat`` (the wheel with ipywidgets 7.7, built by ``./dev test``): every
panel of the studio builds there with its titles and tooltips, and nothing is passed that 7.7 ignores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ipywidgets as w

from nerf_widgets.widgets.compat import IPYWIDGETS_MAJOR, enable_colab_widgets, set_tab_titles, tab_titles, tooltip
from tests.e2e.compat_harness import assert_wheel_current, require_compat_venv

REPO = Path(__file__).resolve().parents[2]


def test_tab_titles_round_trip() -> None:
    tab = w.Tab(children=[w.HTML("a"), w.HTML("b"), w.HTML("c")])
    set_tab_titles(tab, ["Projects", "Images", "Poses"])
    assert tab_titles(tab) == ["Projects", "Images", "Poses"]


def test_tooltip_sets_a_real_trait() -> None:
    box = w.IntText(3, description="n", **tooltip("how many"))
    (key,) = tooltip("x")
    assert box.has_trait(key) and getattr(box, key) == "how many"
    assert key == ("tooltip" if IPYWIDGETS_MAJOR >= 8 else "description_tooltip")


def test_not_colab_here() -> None:
    assert enable_colab_widgets() is False


def test_colab_widget_manager_enabled_once_on_import(tmp_path: Path) -> None:
    """A ``google.colab`` package on the path (as in Colab): importing the widgets enables its manager, once."""
    colab = tmp_path / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text("")
    calls = tmp_path / "calls.txt"
    (colab / "output.py").write_text(
        f"def enable_custom_widget_manager():\n    open({str(calls)!r}, 'a').write('enabled\\n')\n")
    code = ("import nerf_widgets.widgets\nfrom nerf_widgets.widgets.compat import enable_colab_widgets\n"
            "assert enable_colab_widgets() is True\nfrom nerf_widgets.widgets import StudioApp\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path, timeout=120)
    assert calls.read_text() == "enabled\n"


BUILD_ALL = textwrap.dedent("""
    import json, sys, tempfile, warnings
    from pathlib import Path
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import ipywidgets, trimesh
        import nerf_widgets
        from nerf_widgets.studio import Studio
        from nerf_widgets.widgets import StudioApp
        from nerf_widgets.widgets.mesh_viewer import MeshViewer
        home = Path(tempfile.mkdtemp())
        studio = Studio(home)
        project = studio.create_project("Seven")
        app = StudioApp(studio=studio)
        app.open_project(project.id)
        app.show("Training")
        path = home / "ball.glb"
        trimesh.creation.icosphere().export(path)
        viewer = MeshViewer(path)
        training = app.panels["Training"]
    print(json.dumps({
        "ipywidgets": ipywidgets.__version__, "package": nerf_widgets.__file__,
        "titles": [app.tabs.get_title(i) for i in range(len(app.tabs.children))],
        "selected": app.tabs.selected_index,
        "broken": [t for t, p in app.panels.items() if type(p).__name__ == "HTML"],
        "tooltip": training.max_steps.description_tooltip,
        "mesh": type(viewer.view.children[0]).__name__,
        "warnings": [str(w.message) for w in caught if "nerf_widgets" in w.filename or "unrecognized" in str(w.message)],
    }))
    studio.close()
""")


def test_every_panel_builds_with_ipywidgets_7() -> None:
    python = require_compat_venv()
    assert_wheel_current()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(python), "-c", BUILD_ALL], env=env, cwd="/", capture_output=True, text=True,
                         timeout=300, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ipywidgets"].startswith("7.7.")
    assert "site-packages" in result["package"]  # the wheel, not this checkout
    assert result["titles"] == ["Projects", "Images", "Poses", "Training", "System", "Export"]
    assert result["selected"] == 3 and result["broken"] == []
    assert result["tooltip"] == "0 = preset's"
    assert result["mesh"] == "Renderer"
    assert result["warnings"] == []
