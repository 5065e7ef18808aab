"""Shared fixtures: a real studio home in a temp folder (real SQLite file, real files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.gpu`` tests run only where PyTorch sees a CUDA device (torch is imported only if some
    collected test is marked)."""
    marked = [item for item in items if item.get_closest_marker("gpu")]
    if not marked:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device (none visible to PyTorch here)")
        for item in marked:
            item.add_marker(skip)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty studio home; also exported as NERF_WIDGETS_HOME would be, but passed explicitly."""
    return tmp_path / "home"


@pytest.fixture
def studio(home: Path) -> Iterator[object]:
    from nerf_widgets.studio import Studio

    s = Studio(home)
    yield s
    from nerf_widgets.jobs import shutdown_runners

    shutdown_runners()  # job threads started through this studio must not outlive its temp home
    s.close()


@pytest.fixture
def project(studio: object) -> object:
    return studio.create_project("Test scene", "made by a test")  # type: ignore[attr-defined]
