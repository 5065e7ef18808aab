"""View-dependent colour: photos of a surface whose colour changes with the viewing direction (a known linear
sheen) are fitted after refinement; the term must carry what the texture cannot, reach views it was not fitted
to, survive the file (GLB, glTF side files, a region's turn) and be refused where it cannot go."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.core.region import Region
from nerf_widgets.export import PhotoView, export_field
from nerf_widgets.export.compare import psnr, render_mesh
from nerf_widgets.export.formats import MeshData, z_up_to_y_up
from nerf_widgets.export.gltf_read import read_view_term
from nerf_widgets.export.refine import Samples
from nerf_widgets.export.view_fit import fit_view_term
from nerf_widgets.export.view_term import EXTENSION, ViewTerm
from tests.export.export_helpers import validate_gltf
from tests.export.photos import photo, ring_cameras
from tests.export.test_export_refine import SMALL, FlatField, read_glb, stripes

SHEEN = np.array([0.25, 0.15, 0.08])  # colour per unit of the ray's world z: brighter seen from below


def sheen_photo(field: FlatField, c2w: np.ndarray) -> PhotoView:
    """The stripes plus SHEEN * d_z, d the unit ray from this camera to the surface point."""
    eye = c2w[:3, 3]

    def colour(p: np.ndarray) -> np.ndarray:
        d = p - eye
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return np.clip(stripes(p) + d[:, 2:3] * SHEEN, 0, 1)

    return photo(field, c2w, 64, 72.0, colour)


def sheen_shots(field: FlatField) -> tuple[list[PhotoView], list[PhotoView]]:
    """(training photos, held-out photos) of the sheen, the held-out ones spread over heights."""
    cams = ring_cameras(40, seed=3)
    held = set(range(2, 40, 7))  # the spiral runs from top to bottom
    photos = [sheen_photo(field, c) for c in cams]
    return [p for k, p in enumerate(photos) if k not in held], [p for k, p in enumerate(photos) if k in held]


def export_glossy(field: FlatField, train: list[PhotoView], out: Path) -> dict:
    """Refined GLBs with ("shiny") and without ("plain") the term. Budgets the fits never reach: they stop by
    their passes or their watched photos, whatever the machine's load."""
    return {name: export_field(field.density, field.color, field.aabb, out / name / "m.glb", format="glb", views=train,
                               refine_minutes=30.0, view_dependence=name == "shiny", compare=0, **SMALL)
            for name in ("shiny", "plain")}


@pytest.fixture(scope="module")
def flat() -> FlatField:
    import torch

    torch.set_num_threads(2)
    return FlatField(floater=False)


@pytest.fixture(scope="module")
def shots(flat: FlatField) -> tuple[list[PhotoView], list[PhotoView]]:
    return sheen_shots(flat)


@pytest.fixture(scope="module")
def glossy(flat: FlatField, shots: tuple, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return export_glossy(flat, shots[0], tmp_path_factory.mktemp("sheen"))


def data_of(path: Path) -> MeshData:
    verts, faces, uv, image = read_glb(path)
    return MeshData(verts, faces, np.zeros_like(verts), uv=uv, image=(image * 255 + 0.5).astype(np.uint8),
                    view_term=read_view_term(path))


def mean_psnr(data: MeshData, views: list[PhotoView]) -> float:
    return float(np.mean([psnr(render_mesh(data, v)[0], v.on_background()) for v in views]))


def test_the_term_carries_the_sheen_to_views_it_was_not_fitted_to(glossy: dict, shots: tuple) -> None:
    _, held = shots
    shiny, plain = data_of(glossy["shiny"].path), data_of(glossy["plain"].path)
    assert plain.view_term is None and shiny.view_term is not None
    stats = glossy["shiny"].refine["view_term"]
    assert stats["kept"] and stats["watch_mse_after"] < 0.75 * stats["watch_mse_before"], stats
    with_term, texture_alone = mean_psnr(shiny, held), mean_psnr(MeshData(**{**shiny.__dict__, "view_term": None}), held)
    assert with_term > texture_alone + 0.6, (with_term, texture_alone)  # 26.70 against 25.65 dB
    assert abs(texture_alone - mean_psnr(plain, held)) < 0.5  # the texture is what it was without the term
    assert glossy["shiny"].seconds["shine"] > 0 and "shine" not in glossy["plain"].seconds  # its own stage


def test_the_fitted_term_points_along_the_sheen_in_the_file_frame(glossy: dict) -> None:
    """A d rises along the sheen's direction (world z, the file's y) in the sheen's colours, and not across it.

    It carries part of the sheen only: the texture already holds each texel's mean colour, and A d has no
    constant of its own, so over the half sphere of rays a texel is seen from it meets the sheen halfway
    (0.45 of the full rise here, at any learning rate or number of passes)."""
    term = read_view_term(glossy["shiny"].path)
    assert term is not None
    verts, faces, uv, _ = read_glb(glossy["shiny"].path)
    up, side = z_up_to_y_up(np.array([[0.0, 0.0, 1.0]])), z_up_to_y_up(np.array([[1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(up, [[0.0, 1.0, 0.0]])
    tc = uv[faces].mean(1)  # face centres' UVs
    rise = term.shade(tc, np.repeat(up, len(tc), 0)) - term.shade(tc, -np.repeat(up, len(tc), 0))
    turn = term.shade(tc, np.repeat(side, len(tc), 0)) - term.shade(tc, -np.repeat(side, len(tc), 0))
    median = np.median(rise, 0)
    assert np.all(median > 0.35 * 2 * SHEEN) and np.all(median < 1.1 * 2 * SHEEN), median
    np.testing.assert_allclose(median / median[0], SHEEN / SHEEN[0], atol=0.15)  # its colour
    assert np.all(np.abs(np.median(turn, 0)) < 0.25 * 2 * SHEEN), np.median(turn, 0)


def test_a_glb_and_a_gltf_carry_the_term_and_pass_the_validator(flat: FlatField, shots: tuple, glossy: dict,
                                                                tmp_path: Path) -> None:
    glb = glossy["shiny"].path
    report = validate_gltf(glb)
    assert report["numErrors"] == 0, report["messages"]
    raw = glb.read_bytes()
    doc = json.loads(raw[20 : 20 + struct.unpack("<I", raw[12:16])[0]])
    assert EXTENSION in doc["extensionsUsed"] and EXTENSION not in doc.get("extensionsRequired", [])
    ext = doc["materials"][0]["extensions"][EXTENSION]
    assert [doc["samplers"][doc["textures"][t["index"]]["sampler"]]["minFilter"] for t in ext["textures"]] == [9729] * 3
    term = read_view_term(glb)
    assert term is not None and term.image.shape == (128, 128, 9)  # half the 256 texture
    res = export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.gltf", format="gltf", views=shots[0],
                       refine_minutes=0.05, view_dependence=True, compare=0, **SMALL)
    names = sorted(p.name for p in res.files)
    assert names == ["m.bin", "m.gltf", "m_texture.png", "m_view0.png", "m_view1.png", "m_view2.png"], names
    side = read_view_term(res.path)
    assert side is not None and side.image.shape == (128, 128, 9)
    assert validate_gltf(res.path)["numErrors"] == 0


def test_a_turned_term_reads_the_turned_rays_the_same() -> None:
    rng = np.random.default_rng(0)
    term = ViewTerm(rng.integers(1, 256, (8, 8, 9)).astype(np.uint8), 0.3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    uv, d = rng.random((50, 2)), rng.normal(size=(50, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    turned = term.turned(q)
    np.testing.assert_allclose(turned.shade(uv, d), term.shade(uv, d @ q.T), atol=2 * turned.scale / 127)


def test_a_placed_region_export_keeps_the_sheen_where_the_views_see_it(flat: FlatField, shots: tuple,
                                                                       tmp_path: Path) -> None:
    """A region tipped 90 degrees about x is placed (its up made +Z) in the file: the sheen, along world z, lies
    along another axis there, and the term turns with the mesh."""
    train, held = shots
    box = Region.from_dict({"center": [0.0, 0.0, 0.0], "size": [1.8, 1.8, 1.8],
                            "rotation": [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]})
    res = export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", views=train,
                       refine_minutes=30.0, region=box, view_dependence=True, compare=0, **SMALL)
    placed = data_of(res.path)
    assert placed.view_term is not None
    # the views, placed the same way: world -> the box's frame (floor at 0), cameras turned along
    moved = []
    for v in held:
        c2w = np.array(v.c2w, np.float64)
        c2w[:3, :3] = box.rotation.T @ c2w[:3, :3]
        c2w[:3, 3] = box.place(c2w[None, :3, 3])[0]
        moved.append(PhotoView(v.image, c2w, v.fx, v.fy, v.cx, v.cy))
    with_term = mean_psnr(placed, moved)
    assert with_term > mean_psnr(MeshData(**{**placed.__dict__, "view_term": None}), moved) + 0.6


@pytest.mark.parametrize(("options", "words"), [
    ({"format": "obj"}, "glTF"),
    ({"format": "ply", "texture": 0}, "glTF"),
    ({"format": "glb", "compress": "draco"}, "compression"),
    ({"format": "glb", "refine_minutes": 0}, "refine_minutes=0"),
    ({"format": "glb", "view_dependence": "yes"}, "True, False or None"),
    ({"format": "glb"}, "training photos"),  # asked for, and no photos given
])
def test_view_dependence_refused_where_it_cannot_go(flat: FlatField, tmp_path: Path, options: dict,
                                                   words: str) -> None:
    fmt = options.pop("format")
    options.setdefault("view_dependence", True)
    out = tmp_path / f"m.{'ply' if fmt == 'ply' else fmt}"
    with pytest.raises(ValidationError, match=words):
        export_field(flat.density, flat.color, flat.aabb, out, format=fmt, **options)
    assert list(tmp_path.iterdir()) == []


def test_the_default_fits_a_term_and_the_web_preset_does_not(flat: FlatField, shots: tuple, tmp_path: Path) -> None:
    small = {**SMALL, "refine_minutes": 0.05, "compare": 0}
    auto = export_field(flat.density, flat.color, flat.aabb, tmp_path / "a" / "m.glb", format="glb", views=shots[0],
                        **small)
    web = export_field(flat.density, flat.color, flat.aabb, tmp_path / "w" / "m.glb", format="glb", views=shots[0],
                       preset="web", **small)
    squeezed = export_field(flat.density, flat.color, flat.aabb, tmp_path / "d" / "m.glb", format="glb",
                            views=shots[0], compress="meshopt", **small)
    assert auto.refine is not None and "view_term" in auto.refine
    assert web.refine is not None and "view_term" not in web.refine and read_view_term(web.path) is None
    assert squeezed.refine is not None and "view_term" not in squeezed.refine


def test_a_broken_extension_is_named(glossy: dict, tmp_path: Path) -> None:
    raw = glossy["shiny"].path.read_bytes()
    length = struct.unpack("<I", raw[12:16])[0]
    doc = json.loads(raw[20 : 20 + length])
    doc["materials"][0]["extensions"][EXTENSION]["scale"] = -1
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    rest = raw[20 + length :]
    bad = tmp_path / "bad.glb"
    bad.write_bytes(struct.pack("<4sII", b"glTF", 2, 20 + len(js) + len(rest)) + struct.pack("<I4s", len(js), b"JSON")
                    + js + rest)
    with pytest.raises(ValueError, match=EXTENSION):
        read_view_term(bad)


def test_a_term_the_watched_photos_disagree_with_is_dropped(flat: FlatField, tmp_path: Path) -> None:
    """Every 8th photo (the ones refinement watches) shows the sheen reversed: what the others teach makes those
    worse, so the export keeps the texture alone (the file carries no term)."""
    cams = ring_cameras(32, seed=5)
    photos = []
    for k, c in enumerate(cams):
        sign = -1.0 if k % 8 == 7 else 1.0
        eye = c[:3, 3]

        def colour(p: np.ndarray, eye: np.ndarray = eye, sign: float = sign) -> np.ndarray:
            d = (p - eye) / np.linalg.norm(p - eye, axis=1, keepdims=True)
            return np.clip(stripes(p) + sign * 2 * d[:, 2:3] * SHEEN, 0, 1)

        photos.append(photo(flat, c, 64, 72.0, colour))
    res = export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", views=photos,
                       refine_minutes=30.0, view_dependence=True, compare=0, **SMALL)
    stats = res.refine["view_term"]
    assert not stats["kept"] and not res.view_term and stats["watch_mse_after"] >= stats["watch_mse_before"], stats
    assert read_view_term(res.path) is None


def test_no_watched_samples_fits_the_passes_and_keeps_the_term() -> None:
    """A watched set the object's texels never see (a packed atlas's background-only photos) is no verdict."""
    rng = np.random.default_rng(0)
    n = 4000
    uv, d = rng.random((n, 2)).astype(np.float32), rng.normal(size=(n, 3)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    rgb = (np.clip(0.5 + 0.3 * d[:, 2:3], 0, 1) * np.ones(3) * 255 + 0.5).astype(np.uint8)
    fitted = Samples(uv, rgb, np.ones(n, np.float32), 8, np.zeros(n, np.int32), d)
    base = np.full((16, 16, 3), 128, np.uint8)
    empty = fitted.subset(np.zeros(n, bool))
    kept = {name: fit_view_term(base, fitted, w, 60.0, lambda: 0.0) for name, w in (("none", None), ("empty", empty))}
    for term, stats in kept.values():
        assert term is not None and stats.epochs >= 2.9, stats
    np.testing.assert_array_equal(kept["none"][0].image, kept["empty"][0].image)


def test_the_object_samples_of_a_packed_atlas_come_back_in_its_own_uvs() -> None:
    """With a background both textures share one atlas while refining (``background.pack``); the term is fitted on
    the object's samples only, at the UVs of the object's own texture."""
    from nerf_widgets.export import background
    from nerf_widgets.export.pipeline import _object_samples

    rng = np.random.default_rng(1)

    def part(n: int, shape: tuple[int, int]) -> MeshData:
        verts = rng.normal(size=(n, 3))
        return MeshData(verts, np.arange(n - n % 3).reshape(-1, 3), verts, uv=rng.random((n, 2)) * 0.98 + 0.01,
                        image=rng.integers(0, 255, (*shape, 3)).astype(np.uint8))

    obj, back = part(30, (16, 16)), part(24, (8, 24))
    data = MeshData(**{**obj.__dict__, "background": back})
    packed = background.pack(data, np.ones((16, 16), bool))
    n = len(packed.uv)
    samples = Samples(packed.uv.astype(np.float32), np.zeros((n, 3), np.uint8), np.ones(n, np.float32), 1,
                      np.arange(n, dtype=np.int32), np.zeros((n, 3), np.float32))
    mine = _object_samples(data, packed.image.shape[:2], samples)
    np.testing.assert_array_equal(mine.view, np.arange(30))  # the object's vertices, none of the background's
    np.testing.assert_allclose(mine.uv, obj.uv, atol=1e-6)
