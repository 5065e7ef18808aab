"""The comparison beside an export: mesh and field drawn from held-out photos, scored, shown in the MeshViewer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.export import PhotoView, export_field
from nerf_widgets.export.compare import psnr, read_comparison, render_mesh, sidecar
from nerf_widgets.export.formats import MeshData
from nerf_widgets.export.query import FieldQuery
from nerf_widgets.export.texture import sample
from nerf_widgets.export.volume import render_volume
from nerf_widgets.widgets.mesh_viewer import MeshViewer
from tests.export.photos import photo, ring_cameras, stripes
from tests.export.test_export_refine import FlatField

SMALL = {"resolution": 48, "faces": 4000, "texture": 128}


@pytest.fixture(scope="module")
def flat() -> FlatField:
    import torch

    torch.set_num_threads(2)
    return FlatField(floater=False)


@pytest.fixture(scope="module")
def photos(flat: FlatField) -> tuple[list[PhotoView], list[PhotoView]]:
    cams = ring_cameras(22, seed=4)
    return [photo(flat, c, 64, 72.0, stripes) for c in cams[:18]], [photo(flat, c, 64, 72.0, stripes) for c in cams[18:]]


@pytest.fixture(scope="module")
def exports(flat: FlatField, photos: tuple[list[PhotoView], list[PhotoView]],
            tmp_path_factory: pytest.TempPathFactory) -> dict:
    train, held = photos
    out = tmp_path_factory.mktemp("compare")
    return {m: export_field(flat.density, flat.color, flat.aabb, out / f"r{m}" / "m.glb", format="glb", views=train,
                            compare_views=held, refine_minutes=m, **SMALL) for m in (0, 30)}


def quad_view(side: int = 16) -> PhotoView:
    """A camera at z=2 looking down -Z at the square [-1,1]^2 of the plane z=0, which fills its picture."""
    c2w = np.eye(4)
    c2w[2, 3] = 2.0
    return PhotoView(np.zeros((side, side, 3), np.uint8), c2w, side, side, side / 2, side / 2)


def quad(**appearance: np.ndarray) -> MeshData:
    verts = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float) * 1.5  # larger than the view
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    return MeshData(verts, faces, np.tile([0.0, 0.0, 1.0], (4, 1)), **appearance)


def test_the_mesh_is_drawn_as_a_viewer_samples_its_texture() -> None:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    view = quad_view()
    image, coverage = render_mesh(quad(uv=uv, image=texture), view, supersample=1)
    assert coverage == 1.0
    # pixel (j, i) looks at world (x, y) = ((i + 0.5) / 8 - 1, 1 - (j + 0.5) / 8): uv = (x, y) / 3 + 0.5
    j, i = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    x, y = (i + 0.5) / 8 - 1, 1 - (j + 0.5) / 8
    expected = sample(texture, np.stack([x / 3 + 0.5, y / 3 + 0.5], -1).reshape(-1, 2)).reshape(16, 16, 3)
    assert np.abs(image - expected).max() < 1e-4


def test_vertex_colours_and_the_background_where_the_mesh_is_not() -> None:
    colors = np.array([[255, 0, 0]] * 4, np.uint8)
    view = quad_view()
    mesh = quad(colors=colors)
    mesh.verts[:, 0] = mesh.verts[:, 0] / 1.5 * 0.5 + 0.5  # x in [0, 1]: the right half of the picture
    image, coverage = render_mesh(mesh, view, background=(0.0, 0.0, 1.0), supersample=2)
    assert coverage == pytest.approx(0.5, abs=0.05)
    assert np.allclose(image[:, :7], [0, 0, 1]) and np.allclose(image[:, 9:], [1, 0, 0])


def test_the_volume_renderer_sees_the_field_where_the_photo_does(flat: FlatField,
                                                                 photos: tuple[list[PhotoView], list[PhotoView]]) -> None:
    view = photos[1][0]
    render = render_volume(FieldQuery(flat.density, flat.color), flat.aabb, view)
    seen = np.abs(render - 1.0).sum(-1) > 0.05
    mask = view.image[..., 3] > 127
    assert (seen & mask).sum() / (seen | mask).sum() > 0.9


def test_the_export_scores_mesh_and_field_on_held_out_photos(exports: dict,
                                                             photos: tuple[list[PhotoView], list[PhotoView]]) -> None:
    held = photos[1]
    bake, refined = exports[0], exports[30]
    for res in (bake, refined):
        folder = res.comparison_dir
        assert folder == sidecar(res.path) and folder.is_dir() and folder not in res.files
        index = read_comparison(folder)
        assert index is not None and len(index["views"]) == 3 and index["gap_db"] == res.comparison["gap_db"]
        for view in index["views"]:
            for kind in ("photo", "field", "mesh"):
                assert Image.open(view[kind]).size == (64, 64)
            assert 10 < view["field_psnr"] < 40 and 10 < view["mesh_psnr"] < 40 and 0.05 < view["coverage"] < 0.5
        assert "compare" in res.seconds
    # the flat field carries none of the photographed stripes: a texture fitted to the photos beats it, and
    # the comparison says so on photos neither was fitted to
    assert refined.comparison["mesh_psnr"] > bake.comparison["mesh_psnr"] + 0.5  # whole pictures: 85 % is background
    assert refined.comparison["mesh_psnr"] > refined.comparison["field_psnr"]
    stored = np.asarray(Image.open(read_comparison(bake.comparison_dir)["views"][0]["photo"]), np.float32) / 255
    assert psnr(stored, held[0].on_background()) > 45  # the stored photo is the held-out one, on white


def test_no_comparison_without_photos_or_when_turned_off(flat: FlatField, photos: tuple[list[PhotoView], list[PhotoView]],
                                                         tmp_path: Path) -> None:
    held = photos[1]
    off = export_field(flat.density, flat.color, flat.aabb, tmp_path / "off" / "m.glb", format="glb",
                       compare_views=held, compare=0, **SMALL)
    none = export_field(flat.density, flat.color, flat.aabb, tmp_path / "none" / "m.glb", format="glb", **SMALL)
    pts = export_field(flat.density, flat.color, flat.aabb, tmp_path / "pts" / "m.ply", format="points",
                       compare_views=held, points=2000, **SMALL)
    for res in (off, none, pts):
        assert res.comparison is None and res.comparison_dir is None
        assert not sidecar(res.path).exists() and "compare" not in res.seconds
    one = export_field(flat.density, flat.color, flat.aabb, tmp_path / "one" / "m.ply", format="ply",
                       compare_views=held, compare=1, **SMALL)  # vertex colours are compared too
    assert len(one.comparison["views"]) == 1 and one.comparison["views"][0]["name"] == "view 1"
    again = export_field(flat.density, flat.color, flat.aabb, one.path, format="ply", compare=0, **SMALL)
    assert again.comparison is None and not sidecar(one.path).exists()  # no stale pictures of the last mesh


@pytest.mark.parametrize("value", [-1, 13, "2", 1.5, True])
def test_a_bad_compare_count_is_refused_before_any_work(flat: FlatField, tmp_path: Path, value: object) -> None:
    with pytest.raises(ValidationError, match="compare"):
        export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", compare=value, **SMALL)
    assert not any(tmp_path.iterdir())


def test_the_mesh_viewer_shows_photo_field_and_mesh_side_by_side(exports: dict) -> None:
    res = exports[30]
    viewer = MeshViewer(res.path)
    box = viewer.compare
    assert box.layout.display is None and [o[0] for o in box.picker.options] == ["view 1", "view 2", "view 3"]
    first = {k: bytes(img.value) for k, img in box.images.items()}
    assert all(v.startswith(b"\x89PNG") for v in first.values())
    views = res.comparison["views"]
    assert f"{views[0]['field_psnr']:.2f} dB" in box.captions["field"].value
    assert f"{views[0]['mesh_psnr']:.2f} dB" in box.captions["mesh"].value
    assert "above</b> the field" in box.summary.value and "mean over 3 views" in box.summary.value
    box.picker.value = 2
    assert bytes(box.images["photo"].value) != first["photo"]
    assert f"{views[2]['mesh_psnr']:.2f} dB" in box.captions["mesh"].value


def test_the_mesh_viewer_hides_a_missing_or_broken_comparison(exports: dict, tmp_path: Path) -> None:
    import shutil

    res = exports[0]
    copy = tmp_path / "m.glb"
    shutil.copy(res.path, copy)
    viewer = MeshViewer(copy)
    assert viewer.compare.layout.display == "none"
    shutil.copytree(res.comparison_dir, sidecar(copy))
    assert viewer.show(copy) and viewer.compare.layout.display is None
    index = json.loads((sidecar(copy) / "compare.json").read_text())
    (sidecar(copy) / index["views"][1]["mesh"]).unlink()
    assert viewer.show(copy) and viewer.compare.layout.display == "none"
    (sidecar(copy) / "compare.json").write_text("{not json")
    assert read_comparison(sidecar(copy)) is None
