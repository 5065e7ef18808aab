"""Texture refinement against photos: an analytic shape whose field colour is flat (the bake has no pattern)
photographed with a known stripe pattern; refinement must reproduce the stripes, within its budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nerf_widgets.core.errors import CancelledError, ValidationError
from nerf_widgets.export import PhotoView, SphereBoxField, export_field, refine
from nerf_widgets.export.bake import rasterize_uv
from nerf_widgets.export.raster import rasterize
from tests.export.export_helpers import y_up_to_z_up
from tests.export.photos import photo, ring_cameras

SMALL = {"resolution": 64, "faces": 6000, "texture": 256}
BASE = np.array([0.5, 0.45, 0.4])


def stripes(p: np.ndarray) -> np.ndarray:
    """Coarse enough for 64-pixel photos (half period ~3 pixels): what the photos show, the field does not."""
    s = np.sin(24.0 * p[:, 0]) * np.sin(24.0 * p[:, 1] + 1.0) * np.sin(24.0 * p[:, 2] + 2.0)
    return np.clip(BASE + 0.35 * np.sign(s)[:, None] * np.array([1.0, 0.8, 0.6]), 0.0, 1.0)


class FlatField(SphereBoxField):
    """The shape of ``SphereBoxField`` with one flat colour: a bake of it carries none of the stripes."""

    def color(self, points, dirs):  # type: ignore[no-untyped-def]
        import torch

        return torch.as_tensor(BASE, dtype=torch.float32).expand(len(points), 3).clone()


@pytest.fixture(scope="module")
def flat() -> FlatField:
    import torch

    torch.set_num_threads(2)
    return FlatField(floater=False)


@pytest.fixture(scope="module")
def cameras() -> list[np.ndarray]:
    return ring_cameras(30, seed=1)


@pytest.fixture(scope="module")
def views(flat: FlatField, cameras: list[np.ndarray]) -> list[PhotoView]:
    return [photo(flat, c, 64, 72.0, stripes) for c in cameras[:24]]


@pytest.fixture(scope="module")
def held_out(flat: FlatField, cameras: list[np.ndarray]) -> list[PhotoView]:
    return [photo(flat, c, 64, 72.0, stripes) for c in cameras[24:]]


def read_glb(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World-frame verts [V,3], faces [F,3], uv [V,2] (OpenGL) and texture [S,S,3] float of a GLB."""
    import trimesh

    mesh = trimesh.load(path, force="mesh")
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"), np.float32) / 255.0
    return y_up_to_z_up(np.asarray(mesh.vertices)), np.asarray(mesh.faces), np.asarray(mesh.visual.uv), image


def texel_error(path: Path) -> float:
    """Mean |texture - stripes| over covered texels whose surface point is clear of a stripe edge."""
    verts, faces, uv, image = read_glb(path)
    face_id, bary = rasterize_uv(uv, faces, image.shape[0])
    covered = face_id >= 0
    points = (verts[faces[face_id[covered]]] * bary[covered][..., None]).sum(1)
    s = np.sin(24.0 * points[:, 0]) * np.sin(24.0 * points[:, 1] + 1.0) * np.sin(24.0 * points[:, 2] + 2.0)
    clear = np.abs(s) > 0.3
    return float(np.abs(image[covered][clear] - stripes(points[clear])).mean())


def render_psnr(path: Path, views: list[PhotoView]) -> float:
    """PSNR of the textured mesh (nearest texel) against RGBA photos, over pixels inside both silhouettes
    (the texture's share; the marching-cubes silhouette is not what refinement changes)."""
    verts, faces, uv, image = read_glb(path)
    size, values = image.shape[0], []
    for v in views:
        frags = rasterize(verts, faces, v)
        inside = frags.covered & (v.image[..., 3] == 255)
        tc = (uv[faces[frags.face_id[inside]]] * frags.bary[inside][..., None]).sum(1)
        col = np.clip((tc[:, 0] * size).astype(int), 0, size - 1)
        row = np.clip(((1 - tc[:, 1]) * size).astype(int), 0, size - 1)
        values.append(-10 * np.log10(np.mean((image[row, col] - v.image[inside][:, :3] / 255.0) ** 2)))
    return float(np.mean(values))


@pytest.fixture(scope="module")
def exports(flat: FlatField, views: list[PhotoView], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("refine")
    made = {}
    # a budget the fit never reaches: it stops after refine.MAX_EPOCHS passes, whatever the machine's load
    for name, opts in {"bake": {}, "zero": {"refine_minutes": 0}, "refined": {"refine_minutes": 30.0}}.items():
        made[name] = export_field(flat.density, flat.color, flat.aabb, out / name / "m.glb", format="glb",
                                  views=None if name == "bake" else views, **SMALL, **opts)
    return made


def test_refinement_recovers_the_photographed_pattern_the_bake_lacks(exports: dict) -> None:
    bake, refined = texel_error(exports["bake"].path), texel_error(exports["refined"].path)
    stats = exports["refined"].refine
    assert stats["views"] == 24 and stats["samples"] > 10_000 and stats["steps"] > 0
    assert stats["mse_after"] < 0.35 * stats["mse_before"], stats
    assert bake > 0.2  # a flat bake is off by the stripes' amplitude
    assert refined < 0.5 * bake, (bake, refined)


def test_refinement_improves_views_it_was_not_fitted_to(exports: dict, held_out: list[PhotoView]) -> None:
    before, after = render_psnr(exports["bake"].path, held_out), render_psnr(exports["refined"].path, held_out)
    assert after > before + 3.0, (before, after)


def test_refine_minutes_zero_leaves_the_bake_unchanged(exports: dict) -> None:
    assert exports["zero"].refine is None and "refine" not in exports["zero"].seconds
    assert np.array_equal(read_glb(exports["zero"].path)[3], read_glb(exports["bake"].path)[3])
    assert exports["refined"].seconds["refine"] > 0


@pytest.mark.parametrize("value", [-1, 61, float("nan"), "2", True])
def test_bad_refine_minutes_refused_before_any_work(flat: FlatField, views: list[PhotoView], tmp_path: Path,
                                                    value: object) -> None:
    with pytest.raises(ValidationError, match="refine_minutes"):
        export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", views=views,
                     refine_minutes=value, **SMALL)
    assert not any(tmp_path.iterdir())


def test_refinement_without_photos_or_texture_refused(flat: FlatField, views: list[PhotoView], tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs the training photos"):
        export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", refine_minutes=1, **SMALL)
    with pytest.raises(ValidationError, match="refines a texture"):
        export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.ply", format="ply", views=views,
                     refine_minutes=1, **SMALL)
    bad = PhotoView(np.zeros((8, 8), np.uint8), np.eye(4), 10.0, 10.0, 4.0, 4.0)
    with pytest.raises(ValidationError, match="photo 1: image"):
        export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", views=[views[0], bad],
                     **SMALL)
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def baked(exports: dict) -> tuple:
    """(bake [S,S,3] uint8, covered [S,S], verts, faces, uv) of the bake-only export."""
    verts, faces, uv, image = read_glb(exports["bake"].path)
    face_id, _ = rasterize_uv(uv, faces, image.shape[0])
    return (image * 255 + 0.5).astype(np.uint8), face_id >= 0, verts, faces, uv


class StepClock:
    """A fake clock: every reading is one second later (the budget becomes a count of readings)."""

    def __init__(self) -> None:
        self.now = -1.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_budget_stops_the_fit_by_its_clock(baked: tuple, views: list[PhotoView]) -> None:
    runs = {}
    for minutes in (0.5, 1.0):  # 30 and 60 readings of the fake clock: rasterising reads it once per view
        image, stats = refine.refine_texture(*baked, views[:8], minutes, clock=StepClock())
        runs[minutes] = stats
        assert stats.views == 8 and stats.steps == minutes * 60 - 8  # one reading at the start, 7 between views
    assert runs[1.0].steps - runs[0.5].steps == 30
    assert runs[1.0].mse_after < runs[0.5].mse_after < runs[0.5].mse_before


def test_half_the_budget_at_most_goes_to_rasterising(baked: tuple, views: list[PhotoView]) -> None:
    _, stats = refine.refine_texture(*baked, views, 0.2, clock=StepClock())  # 12 readings: > 6 stops rasterising
    assert stats.views == 7 and stats.steps == 4


def test_cancel_during_refinement_leaves_nothing(flat: FlatField, views: list[PhotoView], tmp_path: Path) -> None:
    stages: list[tuple[str, float]] = []
    state = {"refine_checks": 0}

    def should_stop() -> bool:
        if stages and stages[-1][0] == "refine":
            state["refine_checks"] += 1
        return state["refine_checks"] > 5

    with pytest.raises(CancelledError, match="refinement"):
        export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", views=views,
                     refine_minutes=30, progress=lambda e: stages.append((e.stage, e.stage_fraction)),
                     should_stop=should_stop, **SMALL)
    assert not any(tmp_path.iterdir())
    refine_fractions = [f for s, f in stages if s == "refine"]
    assert refine_fractions[0] == 0.0 and max(refine_fractions) > 0.05  # rasterising reported its part


def test_rasteriser_sees_the_true_silhouette_and_depth(flat: FlatField, views: list[PhotoView], exports: dict) -> None:
    """The mesh rasterised vs the sphere-traced photo of the true surface: same pixels, same depth."""
    verts, faces, _, _ = read_glb(exports["bake"].path)
    for v in views[:4]:
        frags = rasterize(verts, faces, v)
        truth = v.image[..., 3] > 127
        iou = (frags.covered & truth).sum() / (frags.covered | truth).sum()
        assert iou > 0.9, iou
        j, i = np.nonzero(frags.covered & truth)
        d_cam = np.stack([(i + 0.5 - v.cx) / v.fx, -(j + 0.5 - v.cy) / v.fy, -np.ones(len(i))], 1)
        points = v.c2w[:3, 3] + (d_cam * frags.depth[j, i][:, None]) @ v.c2w[:3, :3].T
        assert np.median(np.abs(flat.sdf(points))) < 0.02  # within one voxel of the marching-cubes grid


def test_size_presets_named_for_their_use(tmp_path: Path) -> None:
    from nerf_widgets.export import PRESETS, make_request

    box = [[-1.0] * 3, [1.0] * 3]
    sizes = {name: make_request("glb", tmp_path / "m.glb", box, preset=name) for name in ("web", "game", "archive")}
    assert [r.faces for r in sizes.values()] == [10_000, 50_000, 200_000]
    assert [r.texture for r in sizes.values()] == [1024, 2048, 4096]
    budgets = [r.refine_budget(True) for r in sizes.values()]
    assert budgets == [PRESETS[n]["refine_minutes"] for n in sizes] and budgets == sorted(budgets)
    # a preset's minutes are a budget for when photos exist, not a demand for them
    assert all(r.refine_minutes is None and r.refine_budget(False) == 0.0 for r in sizes.values())
    mine = make_request("glb", tmp_path / "m.glb", box, preset="web", faces=20_000)
    assert (mine.faces, mine.texture, mine.preset) == (20_000, PRESETS["web"]["texture"], "web")
    with pytest.raises(ValidationError, match="unknown preset 'phone'; choose one of web, game, archive"):
        make_request("glb", tmp_path / "m.glb", box, preset="phone")


def test_a_preset_without_photos_bakes_only(flat: FlatField, tmp_path: Path) -> None:
    res = export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", preset="web",
                       resolution=48, texture=128)
    assert res.refine is None and (tmp_path / "m.glb").is_file()


def test_web_preset_export_has_its_face_budget(flat: FlatField, views: list[PhotoView], tmp_path: Path) -> None:
    res = export_field(flat.density, flat.color, flat.aabb, tmp_path / "m.glb", format="glb", views=views[:4],
                       preset="web", resolution=96, texture=256, refine_minutes=0.05)
    assert 5_000 < res.faces <= 10_000 and res.refine is not None and res.refine["views"] >= 1


def test_a_fit_the_watched_photos_disagree_with_stops_and_keeps_the_bake(baked: tuple, flat: FlatField,
                                                                         cameras: list[np.ndarray]) -> None:
    """Eight photos: seven show the stripes, the eighth (watched, kept out of the fit) the flat colour the bake
    already has. Fitting the stripes only makes the watched photo worse: the fit stops and the bake stays."""
    striped = [photo(flat, c, 64, 72.0, stripes) for c in cameras[:7]]
    plain = photo(flat, cameras[7], 64, 72.0, lambda p: np.tile(BASE, (len(p), 1)))
    image, stats = refine.refine_texture(*baked, [*striped, plain], 30.0)
    assert stats.watched_views == 1 and stats.stopped_early and stats.epochs < refine.MAX_EPOCHS
    assert stats.watch_mse_after == stats.watch_mse_before  # the best texels were the bake's
    assert np.abs(image.astype(int) - baked[0].astype(int)).max() <= 1
    _, fitted = refine.refine_texture(*baked, striped, 30.0)  # seven photos: nothing watched, fitted to the end
    assert fitted.watched_views == 0 and not fitted.stopped_early and fitted.mse_after < 0.5 * fitted.mse_before
