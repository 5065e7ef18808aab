"""Dataset readers: both layouts load; malformed folders raise the documented errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.engine.data import load_cameras, load_dataset
from tests.engine.engine_scene import make_scene


@pytest.fixture
def scene(tiny_scene: Path, tmp_path: Path) -> Path:
    """A private, editable copy of the tiny scene."""
    return Path(shutil.copytree(tiny_scene, tmp_path / "scene"))


def _edit(scene: Path, change) -> None:  # type: ignore[no-untyped-def]
    meta = json.loads((scene / "transforms.json").read_text())
    change(meta)
    (scene / "transforms.json").write_text(json.dumps(meta))


def test_transforms_json_loads_with_intrinsics_alpha_and_box(scene: Path) -> None:
    data = load_dataset(scene)
    assert data.images.shape == (16, 64, 64, 4) and data.has_alpha and data.bounded
    assert data.splits["test"] == [0, 8] and len(data.splits["train"]) == 14
    cam = data.cameras[3]
    assert cam.width == 64 and cam.fx == pytest.approx(0.5 * 64 / math.tan(0.35)) and cam.cx == 32
    assert cam.name == "r_3"


def test_blender_split_layout_uses_camera_angle_x(tmp_path: Path) -> None:
    data = load_dataset(make_scene(tmp_path / "blender", n_views=8, size=32, blender=True))
    assert data.splits["test"] == [6, 7] and len(data.splits["train"]) == 6
    assert data.cameras[0].fx == pytest.approx(16 / math.tan(0.35))
    assert np.allclose(data.aabb, [[-1.5] * 3, [1.5] * 3])


def test_cameras_file_without_images_uses_its_w_h(scene: Path) -> None:
    for png in (scene / "images").glob("*.png"):
        png.unlink()
    cams = load_cameras(scene / "transforms.json")
    assert len(cams) == 16 and (cams[0].width, cams[0].height) == (64, 64)


def test_missing_folder_and_missing_transforms(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_dataset(tmp_path / "nope")
    with pytest.raises(ValidationError, match="neither transforms.json"):
        load_dataset(tmp_path)


def test_missing_frame_image(scene: Path) -> None:
    (scene / "images" / "r_5.png").unlink()
    with pytest.raises(ValidationError, match="frame 5: image .* not found"):
        load_dataset(scene)


def test_unreadable_image(scene: Path) -> None:
    (scene / "images" / "r_2.png").write_bytes(b"not a png")
    with pytest.raises(ValidationError, match="unreadable image r_2.png"):
        load_dataset(scene)


def test_nan_matrix(scene: Path) -> None:
    _edit(scene, lambda m: m["frames"][4]["transform_matrix"][0].__setitem__(3, float("nan")))
    with pytest.raises(ValidationError, match="frame 4: transform_matrix must be a finite"):
        load_dataset(scene)


def test_non_rigid_matrix(scene: Path) -> None:
    def scale(m: dict) -> None:
        m["frames"][1]["transform_matrix"][0][0] *= 2.0

    _edit(scene, scale)
    with pytest.raises(ValidationError, match="frame 1: transform_matrix is not a rigid"):
        load_dataset(scene)


def test_inconsistent_image_sizes(scene: Path) -> None:
    Image.new("RGBA", (32, 32)).save(scene / "images" / "r_7.png")
    _edit(scene, lambda m: [m.pop(k) for k in ("w", "h")])
    with pytest.raises(ValidationError, match="inconsistent image sizes"):
        load_dataset(scene)


def test_no_intrinsics(scene: Path) -> None:
    _edit(scene, lambda m: [m.pop(k) for k in ("fl_x", "fl_y")])
    with pytest.raises(ValidationError, match="no intrinsics"):
        load_dataset(scene)


def test_not_json_and_no_frames(scene: Path) -> None:
    (scene / "transforms.json").write_text("{oops")
    with pytest.raises(ValidationError, match="cannot read transforms.json"):
        load_dataset(scene)
    (scene / "transforms.json").write_text(json.dumps({"fl_x": 10}))
    with pytest.raises(ValidationError, match="no 'frames' list"):
        load_dataset(scene)


def test_masked_capture_without_aabb_is_an_object_in_a_box_around_it(scene: Path) -> None:
    """Poses from COLMAP or an import carry no aabb; masked photos must still take the bounded path."""
    _edit(scene, lambda meta: meta.pop("aabb"))
    data = load_dataset(scene)
    assert data.bounded
    lo, hi = data.aabb
    assert np.all(lo < [-0.95, -0.9, -0.65]) and np.all(hi > [0.95, 0.9, 0.85])  # the spheres' extent
    assert np.all(hi - lo < 4.0)  # and not much more: cameras sit at radius 4


def test_opaque_capture_without_aabb_is_contracted(scene: Path) -> None:
    _edit(scene, lambda meta: meta.pop("aabb"))
    for png in (scene / "images").glob("*.png"):
        rgba = np.asarray(Image.open(png))
        rgb = rgba[..., :3] * (rgba[..., 3:] / 255.0) + 255 * (1 - rgba[..., 3:] / 255.0)
        Image.fromarray(rgb.astype(np.uint8), "RGB").save(png)
    assert not load_dataset(scene).bounded
