"""The layers of ARCHITECTURE.md, read from the code: every import of a package module (``import``,
``from ... import``, relative, inside functions or ``if TYPE_CHECKING``) must point the documented way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nerf_widgets

PACKAGE = Path(nerf_widgets.__file__).parent
COMPUTE = ("ingest", "poses", "engine", "export", "sysmetrics")
LOWER = ("core", "store", "domain")
SCREEN = ("ipywidgets", "IPython", "anywidget", "bqplot", "pythreejs", "traitlets")  # screen code: widgets only

# package -> the packages it may import (besides itself); the table ARCHITECTURE.md shows as a diagram
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "store": frozenset({"core"}),
    "domain": frozenset({"core", "store"}),
    **{name: frozenset({"core", "domain"}) for name in COMPUTE},  # never the store, never each other
    "jobs": frozenset({*LOWER, *COMPUTE}),
    "studio": frozenset({*LOWER, *COMPUTE, "jobs"}),
    "widgets": frozenset({"core", "jobs", "studio"}),  # jobs: the event bus types a watching widget reads
    "cli": frozenset({*LOWER, *COMPUTE, "jobs", "studio"}),
    "__init__": frozenset({"studio", "widgets"}),
}


def package_of(path: Path) -> str:
    """``nerf_widgets/store/db.py`` -> ``store``; the package's own ``__init__.py`` -> ``__init__``."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "__init__"


def imported_modules(path: Path, source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source`` (relative ones resolved against ``path``)."""
    module = ["nerf_widgets", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = module if path.name == "__init__.py" else module[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
    return found


def violations(path: Path, source: str) -> list[str]:
    """Imports of ``source`` (the file at ``path``) that go against ``ALLOWED``."""
    src = package_of(path)
    bad = []
    for line, name in imported_modules(path, source):
        parts = name.split(".")
        if parts[0] in SCREEN and src != "widgets":
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} {src} imports screen code {name}")
        if parts[0] != "nerf_widgets" or len(parts) < 2:
            continue
        dst = parts[1] if parts[1] in ALLOWED else "__init__"
        if dst != src and dst not in ALLOWED[src]:
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} {src} imports {name}")
    return bad


def test_every_package_is_in_the_table() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert packages | {"__init__"} == set(ALLOWED)


def test_imports_point_the_documented_way() -> None:
    bad = [v for path in sorted(PACKAGE.rglob("*.py")) for v in violations(path, path.read_text())]
    assert bad == [], "imports against ARCHITECTURE.md's layers:\n" + "\n".join(bad)


@pytest.mark.parametrize(("file", "line"), [
    ("store/projects.py", "from nerf_widgets.domain.records import ProjectRecord"),
    ("ingest/pipeline.py", "from nerf_widgets.store.images import DuplicateImageError"),
    ("jobs/export_job.py", "from nerf_widgets.widgets.download import download_link"),
    ("jobs/export_job.py", "def download_link():\n    from IPython.display import HTML"),
    ("studio/project.py", "import ipywidgets"),
    ("widgets/export_panel.py", "from nerf_widgets.export import run_export"),
    ("widgets/training_panel.py", "def f():\n    from nerf_widgets.engine.config import METHODS"),
    ("widgets/pose_viewer.py", "if TYPE_CHECKING:\n    from nerf_widgets.poses.types import PoseReport"),
    ("poses/sfm.py", "from ..engine import load_field"),
    ("core/ids.py", "import nerf_widgets.store.db"),
    ("engine/trainer.py", "from nerf_widgets import studio"),
])
def test_old_violations_would_be_caught(file: str, line: str) -> None:
    """The check itself: each import the layers once had (and a few more shapes) is reported."""
    assert len(violations(PACKAGE / file, line)) == 1


def test_allowed_imports_pass() -> None:
    assert violations(PACKAGE / "widgets/app.py", "from nerf_widgets.studio import Studio\nfrom . import common") == []
    assert violations(PACKAGE / "domain/lifecycle.py", "from ..store import projects") == []


def test_studio_app_panels_are_widgets() -> None:
    """Tabs are imported by name (``"module:Class"``): those names must stay inside the widgets layer too."""
    from nerf_widgets.widgets import PANELS

    assert all(spec.target.startswith("nerf_widgets.widgets.") for spec in PANELS), PANELS
