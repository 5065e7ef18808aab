"""The background shell of an unbounded capture: a depth panorama of what lies beyond the export box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.export import PhotoView, export_field
from nerf_widgets.export.background import attach, build_shell, cube_directions
from nerf_widgets.export.formats import MeshData
from nerf_widgets.export.texture import sample
from tests.export.photos import look_at, photo, ring_cameras, stripes
from tests.export.test_export_refine import FlatField

ROOM = np.array([[-6.0, -5.0, -4.0], [7.0, 6.0, 5.0]])  # walls around the object's box [-1, 1]^3, off-centre


def room_hit(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Distance [N] from points inside ROOM along unit directions to its walls."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d > 0, (ROOM[1] - o) / d, (ROOM[0] - o) / d)
    return np.where(np.isfinite(t), t, np.inf).min(1)


def wallpaper(p: np.ndarray) -> np.ndarray:
    """Colour [N,3] of the walls at points on them: coarse waves, so a tile of 64 texels can hold them."""
    return 0.5 + 0.4 * np.sin(np.stack([0.9 * p[:, 0] + p[:, 2], 0.8 * p[:, 1] - 0.5 * p[:, 2] + 1, p[:, 0] + p[:, 1] + 2], 1))


def room_trace(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    o, d = np.asarray(o, np.float64), np.asarray(d, np.float64)
    t = room_hit(o, d)
    return wallpaper(o + t[:, None] * d).astype(np.float32), np.ones(len(o), np.float32), t.astype(np.float32)


def test_shell_lies_on_the_walls_faces_the_centre_and_carries_their_colour() -> None:
    centre = np.array([0.3, -0.2, 0.1])
    shell = build_shell(room_trace, centre, 64, stride=8)
    assert shell is not None and shell.tiles == 6 and shell.image is not None
    off = np.minimum(np.abs(shell.verts - ROOM[0]), np.abs(shell.verts - ROOM[1])).min(1)
    assert float(off.max()) < 1e-4  # every vertex on a wall
    tri = shell.verts[shell.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert bool(((normal * (centre - tri.mean(1))).sum(1) > 0).all())  # counter-clockwise seen from the centre
    # the texture at each vertex's uv is the wall's colour there (tiles padded: no bleed from a neighbour)
    err = np.abs(sample(shell.image, shell.uv) - wallpaper(shell.verts)).max(1)
    assert float(np.median(err)) < 0.02 and float(np.quantile(err, 0.99)) < 0.08
    # 6 faces x 8 x 8 cells x 2 triangles: a closed panorama
    assert len(shell.faces) == 6 * 64 * 2


def test_shell_drops_rays_the_field_leaves_empty_and_what_no_photo_saw() -> None:
    def open_sky(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb, acc, t = room_trace(o, d)
        return rgb, np.where(d[:, 2] > 0.3, 0.0, 1.0).astype(np.float32), t  # nothing above: the sky

    shell = build_shell(open_sky, np.zeros(3), 64, stride=8)
    assert shell is not None
    assert float((shell.verts[:, 2] / np.linalg.norm(shell.verts, axis=1)).max()) <= 0.3 + 1e-6
    view = PhotoView(np.zeros((48, 64, 3), np.uint8), look_at(np.array([0.0, -0.5, 0.0]))[:3] @ np.diag([1, 1, 1, 1]),
                     40.0, 40.0, 32.0, 24.0)  # looks along +y from near the centre
    seen = build_shell(room_trace, np.zeros(3), 64, views=[view], stride=8)
    assert seen is not None and seen.tiles < 6 and len(seen.faces) < len(shell.faces)
    from nerf_widgets.export.raster import project

    px = project(seen.verts, view)
    inside = (px[:, 2] > 0) & (px[:, 0] >= 0) & (px[:, 0] <= 64) & (px[:, 1] >= 0) & (px[:, 1] <= 48)
    assert bool(inside[seen.faces].any(1).all())  # every kept triangle has a corner the photo shows
    assert build_shell(lambda o, d: (d, np.zeros(len(d), np.float32), np.ones(len(d), np.float32)),
                       np.zeros(3), 64) is None
    with pytest.raises(ValidationError, match="multiple of the vertex stride"):
        build_shell(room_trace, np.zeros(3), 60, stride=8)


def test_attach_keeps_the_object_as_it_was_and_adds_the_shell_as_its_own_part() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    verts = rng.normal(size=(30, 3))
    obj = MeshData(verts, rng.integers(0, 30, (20, 3)), verts / np.linalg.norm(verts, axis=1, keepdims=True),
                   uv=rng.uniform(0.05, 0.95, (30, 2)), image=image)
    shell = build_shell(room_trace, np.zeros(3), 64, stride=16)
    assert shell is not None and shell.image is not None
    both = attach(obj, shell)
    assert both.image is image and both.uv is obj.uv and both.verts is obj.verts  # the object is untouched
    part = both.background
    assert part is not None and part.image is shell.image and part.uv is shell.uv
    assert both.counts == (30 + len(shell.verts), 20 + len(shell.faces))
    assert bool(((part.normals * -shell.verts).sum(1) > 0).all())  # toward the centre
    plain = attach(MeshData(verts, obj.faces, obj.normals, colors=np.zeros((30, 3), np.uint8)), shell)
    assert plain.background is not None and plain.background.image is None
    np.testing.assert_array_equal(plain.background.colors, shell.colors)


def test_the_background_is_a_part_of_its_own_in_every_format(tmp_path: Path) -> None:
    import trimesh

    from nerf_widgets.export.formats import write_glb, write_obj, write_ply
    from tests.export.export_helpers import validate_gltf, y_up_to_z_up

    rng = np.random.default_rng(1)
    box = trimesh.creation.box(extents=(1, 1, 1))
    uv = rng.uniform(0.05, 0.95, (len(box.vertices), 2))
    obj = MeshData(np.asarray(box.vertices), np.asarray(box.faces), np.asarray(box.vertex_normals), uv=uv,
                   image=rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    shell = build_shell(room_trace, np.zeros(3), 64, stride=16)
    assert shell is not None
    both = attach(obj, shell)
    glb = write_glb(both, tmp_path / "m.glb")[0]
    report = validate_gltf(glb)
    assert report["numErrors"] == 0 and report["numWarnings"] == 0, report["messages"]
    scene = trimesh.load(glb)
    assert sorted(scene.geometry) == ["background", "nerf"]
    far = y_up_to_z_up(np.asarray(scene.geometry["background"].vertices))
    np.testing.assert_allclose(np.sort(np.linalg.norm(far, axis=1)), np.sort(np.linalg.norm(shell.verts, axis=1)),
                               rtol=1e-5)
    assert len(scene.geometry["nerf"].faces) == len(box.faces)
    (tmp_path / "o").mkdir()
    files = write_obj(both, tmp_path / "o" / "m.obj")
    assert sorted(f.name for f in files) == ["m.mtl", "m.obj", "m_background.png", "m_texture.png"]
    text = files[0].read_text()
    assert "o nerf\nusemtl baked" in text and "o background\nusemtl background" in text
    loaded = trimesh.load(files[0], force="mesh")
    assert len(loaded.faces) == len(box.faces) + len(shell.faces)
    colours = attach(MeshData(obj.verts, obj.faces, obj.normals, colors=np.zeros((8, 3), np.uint8)), shell)
    ply = trimesh.load(write_ply(colours, tmp_path / "m.ply")[0], process=False)
    assert len(ply.vertices) == 8 + len(shell.verts) and len(ply.faces) == len(box.faces) + len(shell.faces)
    assert int(ply.faces.max()) == len(ply.vertices) - 1


def room_photo(flat: FlatField, c2w: np.ndarray, side: int, focal: float) -> PhotoView:
    """The object's photo with the room behind it instead of transparency."""
    shot = photo(flat, c2w, side, focal, stripes)
    j, i = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    d = np.stack([(i + 0.5 - side / 2) / focal, -(j + 0.5 - side / 2) / focal, -np.ones((side, side))], -1)
    d = d.reshape(-1, 3) @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    room, _, _ = room_trace(np.broadcast_to(c2w[:3, 3], d.shape), d)
    alpha = shot.image[..., 3:].astype(np.float64) / 255
    rgb = shot.image[..., :3] / 255 * alpha + room.reshape(side, side, 3) * (1 - alpha)
    return PhotoView((rgb * 255 + 0.5).astype(np.uint8), c2w, focal, focal, side / 2, side / 2)


def test_export_with_the_background_shows_the_room_the_photos_show(tmp_path: Path) -> None:
    flat = FlatField(floater=False)
    cams = ring_cameras(34, radius=2.5, seed=2)  # enough photos that the held-out two show nothing new
    train = [room_photo(flat, c, 64, 60.0) for i, c in enumerate(cams) if i not in (10, 23)]
    held = [room_photo(flat, cams[i], 64, 60.0) for i in (10, 23)]
    layers: list[np.ndarray] = []

    def layer(hide: np.ndarray):  # type: ignore[no-untyped-def]
        layers.append(hide)
        return room_trace

    def field_render(view: PhotoView) -> np.ndarray:
        return next(p for p in held if p is view).image[..., :3].astype(np.float32) / 255

    small = {"resolution": 48, "faces": 4000, "texture": 256, "refine_minutes": 0}
    plain = export_field(flat.density, flat.color, flat.aabb, tmp_path / "plain" / "m.glb", format="glb",
                         views=train, compare_views=held, render_field=field_render, **small)
    shelled = export_field(flat.density, flat.color, flat.aabb, tmp_path / "shell" / "m.glb", format="glb",
                           views=train, compare_views=held, render_field=field_render, layer=layer, **small)
    assert plain.background is None and shelled.background is not None and shelled.background["faces"] > 0
    np.testing.assert_array_equal(layers[0], np.asarray(flat.aabb))  # the export box is what is left out
    before = [v["coverage"] for v in plain.comparison["views"]]
    after = [v["coverage"] for v in shelled.comparison["views"]]
    assert max(before) < 0.6 and min(after) > 0.99
    assert shelled.comparison["mesh_psnr"] > plain.comparison["mesh_psnr"] + 6
    assert shelled.faces == plain.faces + shelled.background["faces"]
    assert "background" in shelled.seconds
    # left open, a field with a background gets one only for a plain mesh of the whole box
    no = export_field(flat.density, flat.color, flat.aabb, tmp_path / "wt" / "m.glb", format="glb", views=train,
                      layer=layer, watertight=True, compare=0, **small)
    assert no.background is None


def test_background_requests_that_cannot_be_made_are_refused_before_any_work(tmp_path: Path) -> None:
    flat = FlatField(floater=False)
    out = tmp_path / "x" / "m.glb"
    with pytest.raises(ValidationError, match="cannot"):
        export_field(flat.density, flat.color, flat.aabb, out, format="glb", background=True, compare=0)
    for clash, words in (({"watertight": True}, "watertight"), ({"format": "points"}, "point cloud"),
                         ({"region": {"center": [0, 0, 0], "size": [1, 1, 1]}}, "region")):
        options = {"format": "glb", "background": True, **clash}
        path = out.with_suffix(".ply") if options["format"] == "points" else out
        with pytest.raises(ValidationError, match=words):
            export_field(flat.density, flat.color, flat.aabb, path, layer=lambda h: room_trace, **options)
    with pytest.raises(ValidationError, match="True, False or None"):
        export_field(flat.density, flat.color, flat.aabb, out, format="glb", background="yes")
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_cube_faces_cover_every_direction_once() -> None:
    g = np.linspace(-1, 1, 9)
    b, a = np.meshgrid(g, g, indexing="ij")
    dirs = np.concatenate([cube_directions(k, a.reshape(-1), b.reshape(-1)) for k in range(6)])
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1)
    centres = np.stack([cube_directions(k, np.zeros(1), np.zeros(1))[0] for k in range(6)])
    np.testing.assert_allclose(np.abs(centres).sum(0), [2, 2, 2])  # +-x, +-y, +-z


def test_cancel_stops_the_background_between_faces_and_leaves_nothing(tmp_path: Path) -> None:
    from nerf_widgets.core.errors import CancelledError

    flat = FlatField(floater=False)
    seen: list[float] = []

    def progress(event) -> None:  # type: ignore[no-untyped-def]
        if event.stage == "background":
            seen.append(event.stage_fraction)

    out = tmp_path / "c" / "m.glb"
    with pytest.raises(CancelledError, match="while drawing its background"):
        export_field(flat.density, flat.color, flat.aabb, out, format="glb", layer=lambda h: room_trace,
                     progress=progress, should_stop=lambda: any(f > 0 for f in seen), compare=0,
                     resolution=40, faces=2000, texture=128)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_left_open_a_ply_export_has_no_background_and_asked_for_it_appends_one(tmp_path: Path) -> None:
    import trimesh

    flat = FlatField(floater=False)
    small = {"resolution": 40, "faces": 2000, "compare": 0}
    auto = export_field(flat.density, flat.color, flat.aabb, tmp_path / "a.ply", format="ply",
                        layer=lambda h: room_trace, **small)
    asked = export_field(flat.density, flat.color, flat.aabb, tmp_path / "b.ply", format="ply",
                         layer=lambda h: room_trace, background=True, **small)
    assert auto.background is None and asked.background is not None
    mesh = trimesh.load(asked.path, process=False)
    assert len(mesh.faces) == auto.faces + asked.background["faces"] == asked.faces


def test_pack_puts_both_textures_on_one_atlas_and_unpack_takes_them_back() -> None:
    from nerf_widgets.export.background import pack, unpack

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    verts = rng.normal(size=(30, 3))
    obj = MeshData(verts, rng.integers(0, 30, (20, 3)), verts, uv=rng.uniform(0.05, 0.95, (30, 2)), image=image)
    shell = build_shell(room_trace, np.zeros(3), 64, stride=16)
    assert shell is not None and shell.image is not None
    both = attach(obj, shell)
    covered = rng.random((32, 32)) > 0.5
    packed = pack(both, covered)
    assert packed.image.shape == (32 + shell.image.shape[0], max(32, shell.image.shape[1]), 3)
    np.testing.assert_allclose(sample(packed.image, packed.uv[:30]), sample(image, obj.uv), atol=1e-6)
    np.testing.assert_allclose(sample(packed.image, packed.uv[30:]), sample(shell.image, shell.uv), atol=1e-6)
    assert packed.covered[:32, :32].tolist() == covered.tolist() and packed.covered[32:, : shell.image.shape[1]].all()
    back = unpack(both, packed.image)
    np.testing.assert_array_equal(back.image, image)
    np.testing.assert_array_equal(back.background.image, shell.image)


def test_refinement_fits_the_background_to_the_photos_too(tmp_path: Path) -> None:
    """The field's colours of the background are off (a dull tracer); the photos are not: refined together with
    the object, the background's texels move to the photos' colours."""
    import trimesh

    from tests.export.export_helpers import y_up_to_z_up

    flat = FlatField(floater=False)
    cams = ring_cameras(30, radius=2.5, seed=5)
    train = [room_photo(flat, c, 64, 60.0) for c in cams]

    def dull(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb, acc, t = room_trace(o, d)
        return 0.6 * rgb + 0.1, acc, t

    errors = {}
    for minutes in (0, 0.3):
        res = export_field(flat.density, flat.color, flat.aabb, tmp_path / f"r{minutes}" / "m.glb", format="glb",
                           views=train, layer=lambda h: dull, refine_minutes=minutes, compare=0,
                           resolution=40, faces=3000, texture=256)
        part = trimesh.load(res.path).geometry["background"]
        texture = np.asarray(part.visual.material.baseColorTexture.convert("RGB"))
        uv = np.asarray(part.visual.uv)
        colour = sample(texture, uv)
        errors[minutes] = float(np.median(np.abs(colour - wallpaper(y_up_to_z_up(np.asarray(part.vertices)))).max(1)))
    assert errors[0] > 0.08 and errors[0.3] < 0.5 * errors[0], errors
