"""Shared fixtures: a rendered synthetic scene (made once per session) and small image helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.poses.poses_synthetic import make_scene


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """20 RGBA renders (200x200, focal 220 px) of a textured sphere + box with their true OpenGL c2w."""
    folder = tmp_path_factory.mktemp("synthetic") / "images"
    return folder, make_scene(folder, n=20, size=200, focal=220.0)


def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def noise_image(seed: int, size: tuple[int, int] = (200, 160), blur_cells: int = 8) -> np.ndarray:
    """Blocky random grey texture: features everywhere, but unrelated between seeds (no overlap)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // blur_cells, size[0] // blur_cells), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.BILINEAR))
