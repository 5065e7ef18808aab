"""Export fixtures: one analytic field, each format exported once per session at small settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerf_widgets.export import ExportResult, SphereBoxField, export_field

SMALL = {"resolution": 64, "faces": 6000, "texture": 256}


@pytest.fixture(scope="session")
def field() -> SphereBoxField:
    import torch

    torch.set_num_threads(2)
    return SphereBoxField()


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


_CACHE: dict[str, ExportResult] = {}


@pytest.fixture(scope="session")
def exported(field: SphereBoxField, export_dir: Path):
    """exported(name, format, suffix, **options) -> ExportResult, computed once per session per name."""

    def make(name: str, fmt: str, suffix: str, **options) -> ExportResult:
        if name not in _CACHE:
            out = export_dir / name / f"model{suffix}"
            _CACHE[name] = export_field(field.density, field.color, field.aabb, out, format=fmt, **{**SMALL, **options})
        return _CACHE[name]

    return make
