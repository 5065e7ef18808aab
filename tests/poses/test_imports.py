"""Imports: round trips through COLMAP models, LLFF against hand-checked values, and precise validation errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.poses.colmap_io import write_colmap_text
from nerf_widgets.poses.imports import import_poses, load_report
from nerf_widgets.poses.sfm import load_pycolmap
from nerf_widgets.poses.types import Intrinsics, PosedFrame
from tests.poses.conftest import write_image
from tests.poses.poses_synthetic import ring_cameras

W, H = 64, 48


def _images(folder: Path, n: int) -> list[Path]:
    return [write_image(folder / f"img_{k:02d}.png", np.full((H, W, 3), 40 + k, np.uint8)) for k in range(n)]


def _transforms(folder: Path, n: int = 6, **top: object) -> Path:
    """A nerfstudio-style transforms.json for ``n`` ring cameras (poses deliberately not normalised)."""
    frames = []
    for k, c2w in enumerate(ring_cameras(n, radius=7.0)):
        c2w[:3, 3] += [1.0, -2.0, 0.5]
        frames.append({"file_path": f"images/img_{k:02d}.png", "transform_matrix": c2w.tolist()})
    data = {"fl_x": 50.0, "fl_y": 52.0, "cx": 31.0, "cy": 25.0, "w": W, "h": H, "k1": 0.01, **top, "frames": frames}
    path = folder / "transforms.json"
    path.write_text(json.dumps(data))
    return path


def _read(out: Path) -> tuple[dict, np.ndarray]:
    data = json.loads((out / "transforms.json").read_text())
    return data, np.array([f["transform_matrix"] for f in data["frames"]])


@pytest.mark.parametrize("binary", [False, True])
def test_transforms_to_colmap_and_back_keeps_poses(tmp_path, binary):
    images = _images(tmp_path / "scene" / "images", 6)
    first = import_poses(_transforms(tmp_path / "scene"), None, tmp_path / "a")
    data, c2w = _read(tmp_path / "a")
    assert first.num_registered == 6 and data["fl_x"] == 50.0 and data["fl_y"] == 52.0 and data["k1"] == 0.01
    intr = Intrinsics(**{k: data[k] for k in ("w", "h", "fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2")})
    model = tmp_path / "model"
    write_colmap_text([PosedFrame(p, m, intr) for p, m in zip(images, c2w, strict=True)], model)
    if binary:
        rec = load_pycolmap().Reconstruction(str(model))
        for f in model.iterdir():
            f.unlink()
        rec.write_binary(str(model))
        assert (model / "images.bin").exists()
    second = import_poses(model, tmp_path / "scene" / "images", tmp_path / "b")
    data2, c2w2 = _read(tmp_path / "b")
    assert second.source == "import:colmap"
    assert np.abs(c2w2 - c2w).max() < 1e-6
    assert all(abs(data2[k] - data[k]) < 1e-9 for k in ("fl_x", "fl_y", "cx", "cy", "k1"))


def test_import_normalises_like_estimation(tmp_path):
    _images(tmp_path / "scene" / "images", 6)
    report = import_poses(_transforms(tmp_path / "scene"), None, tmp_path / "out")
    _, c2w = _read(tmp_path / "out")
    assert np.linalg.norm(c2w[:, :3, 3], axis=1).max() == pytest.approx(4.0)
    assert np.abs(c2w[:, :3, 3].mean(0)[:2]).max() < 1e-6  # ring centred on the origin
    up = c2w[:, :3, 1].mean(0)
    assert up[2] / np.linalg.norm(up) == pytest.approx(1.0)
    assert report.normalization["centring"] == "focus" and load_report(tmp_path / "out").num_registered == 6


def test_llff_poses_bounds_against_hand_checked_values(tmp_path):
    images = _images(tmp_path / "images", 2)  # 64x48 stand-ins for 640x480 photos
    # row 0: camera at (1,2,3) with identity OpenGL rotation: LLFF columns [down, right, back] = [-y, x, z]
    # row 1: camera at (0,0,5) turned 90 deg about z: right = +y, up = -x, back = z -> [down, right, back] = [x, y, z]
    rows = np.zeros((2, 17))
    rows[0, :15] = np.array([[0, 1, 0, 1, 480], [-1, 0, 0, 2, 640], [0, 0, 1, 3, 500]]).ravel()
    rows[1, :15] = np.array([[1, 0, 0, 0, 480], [0, 1, 0, 0, 640], [0, 0, 1, 5, 500]]).ravel()
    rows[:, 15:] = [[1.5, 20.0], [2.0, 30.0]]
    np.save(tmp_path / "poses_bounds.npy", rows)
    import_poses(tmp_path / "poses_bounds.npy", tmp_path / "images", tmp_path / "out", normalize=False)
    data, c2w = _read(tmp_path / "out")
    assert [Path(f["file_path"]).name for f in data["frames"]] == [p.name for p in images]
    np.testing.assert_allclose(c2w[0], [[1, 0, 0, 1], [0, 1, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]])
    np.testing.assert_allclose(c2w[1], [[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 5], [0, 0, 0, 1]])
    assert (data["fl_x"], data["fl_y"], data["cx"], data["cy"], data["w"], data["h"]) == (50.0, 50.0, 32, 24, 64, 48)


def test_blender_split_folder_and_camera_angle(tmp_path):
    for split in ("train", "test"):
        _images(tmp_path / split, 2)
        frames = [{"file_path": f"./{split}/img_{k:02d}", "transform_matrix": c2w.tolist()}
                  for k, c2w in enumerate(ring_cameras(2))]
        (tmp_path / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))
    report = import_poses(tmp_path, None, tmp_path / "out")
    data, _ = _read(tmp_path / "out")
    assert report.source == "import:blender" and report.num_registered == 4
    assert data["fl_x"] == pytest.approx(0.5 * W / math.tan(0.4)) and data["h"] == H


def test_intrinsics_are_rescaled_to_the_working_copy_size(tmp_path):
    _images(tmp_path / "scene" / "images", 3)
    path = _transforms(tmp_path / "scene", n=3, w=W * 4, h=H * 4, fl_x=200.0, fl_y=208.0, cx=124.0, cy=100.0)
    import_poses(path, None, tmp_path / "out")
    data, _ = _read(tmp_path / "out")
    assert (data["w"], data["fl_x"], data["fl_y"], data["cx"], data["cy"]) == (W, 50.0, 52.0, 31.0, 25.0)


def test_images_without_frames_are_listed_not_rejected(tmp_path):
    _images(tmp_path / "scene" / "images", 8)
    report = import_poses(_transforms(tmp_path / "scene", n=6), None, tmp_path / "out")
    assert report.num_registered == 6
    assert {im.name: im.reason for im in report.unregistered} == {
        "img_06.png": "no frame in the poses file (not used)", "img_07.png": "no frame in the poses file (not used)"}


def _broken(tmp_path: Path, edit) -> Path:
    _images(tmp_path / "scene" / "images", 4)
    path = _transforms(tmp_path / "scene", n=4)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def _set_nan(d):
    d["frames"][1]["transform_matrix"][0][0] = float("nan")


def _set_scaled(d):
    d["frames"][2]["transform_matrix"] = (np.array(d["frames"][2]["transform_matrix"]) * 2).tolist()


def _drop_focal(d):
    for key in ("fl_x", "fl_y"):
        del d[key]


def _zero_focal(d):
    d["frames"][0]["fl_x"], d["frames"][0]["fl_y"] = 0.0, -3.0


def _missing_image(d):
    d["frames"][3]["file_path"] = "images/not_there.png"


@pytest.mark.parametrize("edit, expected", [
    (_set_nan, "frame 1 (images/img_01.png): rotation contains NaN"),
    (_set_scaled, "frame 2 (images/img_02.png): rotation is not orthonormal"),
    (_drop_focal, "frame 0 (images/img_00.png): missing intrinsics"),
    (_zero_focal, "frame 0 (images/img_00.png): focal length must be positive (fl_x=0, fl_y=-3)"),
    (_missing_image, "frame 'images/not_there.png': names an image that is not in the image set"),
])
def test_invalid_poses_are_rejected_precisely(tmp_path, edit, expected):
    path = _broken(tmp_path, edit)
    with pytest.raises(ValidationError) as err:
        import_poses(path, None, tmp_path / "out")
    assert expected in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_malformed_json_says_where(tmp_path):
    (tmp_path / "transforms.json").write_text('{"frames": [\n  {"file_path": "a.png",,}\n]}')
    with pytest.raises(ValidationError, match=r"malformed JSON at line 2, column 25"):
        import_poses(tmp_path / "transforms.json", tmp_path, tmp_path / "out")
    with pytest.raises(ValidationError, match="'frames' list"):
        (tmp_path / "transforms.json").write_text('{"frame": []}')
        import_poses(tmp_path / "transforms.json", tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_inputs(tmp_path):
    with pytest.raises(NotFoundError, match="nope.json does not exist"):
        import_poses(tmp_path / "nope.json", tmp_path, tmp_path / "out")
    (tmp_path / "poses.txt").write_text("x")
    with pytest.raises(ValidationError, match="unknown poses format"):
        import_poses(tmp_path / "poses.txt", tmp_path, tmp_path / "out")
    np.save(tmp_path / "poses_bounds.npy", np.zeros((3, 15)))
    with pytest.raises(ValidationError, match=r"shape \(N, 17\)"):
        import_poses(tmp_path / "poses_bounds.npy", tmp_path, tmp_path / "out")
