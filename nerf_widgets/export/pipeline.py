"""export_field: density/colour callables + bounds -> mesh file(s), stage by stage.

Stages (``request.STAGES``): sample -> mesh -> cleanup -> unwrap -> bake -> normals -> background -> refine -> shine
-> compare -> write -> compress -> package (normals: the full mesh's detail baked onto the decimated one, see ``normal_map``;
background: an unbounded capture's scene beyond the box, see ``background``; refine: the
baked textures fitted to the training photos, when the caller hands them over as ``views``; shine: the object's
view-dependent colour fitted on the same samples, see ``view_fit``; compare: the mesh
and the field rendered from ``compare_views`` and scored, see ``compare``).
Everything is written in a hidden work folder beside the output and moved into place only at the end,
so a failure or a cancellation leaves nothing half-written.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.core.errors import CancelledError, ValidationError
from nerf_widgets.export import (
    background,
    bake,
    compare,
    formats,
    grid,
    manifold,
    mesh,
    normal_map,
    refine,
    tools,
    uv,
    view_fit,
)
from nerf_widgets.export import region as roi
from nerf_widgets.export.levels import raise_levels
from nerf_widgets.export.query import FieldQuery
from nerf_widgets.export.request import STAGES, ExportRequest, make_request
from nerf_widgets.export.views import PhotoView, check_views
from nerf_widgets.export.volume import render_volume

__all__ = ["ExportProgress", "ExportResult", "export_field", "run_export", "zip_files"]

# share of the total wall time each stage usually takes, for an overall fraction
_WEIGHTS = {"sample": 0.22, "mesh": 0.04, "cleanup": 0.06, "unwrap": 0.06, "bake": 0.16, "normals": 0.04,
            "background": 0.06, "refine": 0.17, "shine": 0.06, "compare": 0.04, "write": 0.04, "compress": 0.02, "package": 0.03}
COARSE_RESOLUTION = 64
SHELL_STRIDE = 8  # texels of the background's tiles between two of its vertices
# Draws the field with the density inside a world box [2,3] left out (``LoadedField.tracer``)
LayerTracer = Callable[[np.ndarray], background.RayTrace]
REACH_VOXELS = 6.0  # half-length of the baking rays, in voxels of the sampling grid (see bake.RAY_SAMPLES)
# how far the copies of a vertex split to make a mesh watertight move, in voxels (vertices closer than this are
# welded first): invisible, and for a model up to a metre across (512 cells, ~2 mm voxels) the copies end up
# ~0.4 mm apart, beyond the 0.1 mm at which Blender's "merge by distance" welds
NUDGE_VOXELS = 0.1


@dataclass(frozen=True)
class ExportProgress:
    """One progress report: the stage, how far into it (0..1) and overall (0..1)."""

    stage: str
    stage_fraction: float
    overall: float


@dataclass
class ExportResult:
    """What was written: files (final paths), their sizes in bytes, mesh counts and per-stage seconds."""

    format: str
    files: list[Path]
    sizes: dict[str, int]
    vertices: int
    faces: int
    iso: float
    texture: int
    uv_method: str
    compress: str
    seconds: dict[str, float] = field(default_factory=dict)
    archive: Path | None = None
    refine: dict[str, Any] | None = None  # refine.RefineStats as a dict when the texture was refined
    comparison: dict[str, Any] | None = None  # compare.write_comparison's index (PSNRs per view, file names)
    comparison_dir: Path | None = None  # the folder with the pictures (compare.sidecar of the main file)
    background: dict[str, Any] | None = None  # the shell's faces, cube tiles and tile side when one was made
    normal_map: bool = False  # whether the object carries a normal map (and a lit material)
    view_term: bool = False  # whether the object carries a view-dependent colour (export.view_term)

    @property
    def path(self) -> Path:
        """The main file (the one to open)."""
        return self.files[0]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = [str(p) for p in self.files]
        out["archive"] = str(self.archive) if self.archive else None
        out["comparison_dir"] = str(self.comparison_dir) if self.comparison_dir else None
        return out


class _Stages:
    """Progress reporting, timing and cancellation between stages."""

    def __init__(self, progress: Callable[[ExportProgress], None] | None, should_stop: Callable[[], bool] | None):
        self.progress, self.should_stop = progress, should_stop
        self.seconds: dict[str, float] = {}
        self.current, self._t0 = "", 0.0

    def start(self, stage: str) -> None:
        self.finish()
        if self.should_stop is not None and self.should_stop():
            raise CancelledError(f"export cancelled before stage {stage!r}", stage=stage)
        self.current, self._t0 = stage, time.perf_counter()
        self.report(0.0)

    def report(self, fraction: float) -> None:
        if self.progress is None or not self.current:
            return
        done = sum(_WEIGHTS[s] for s in STAGES[: STAGES.index(self.current)])
        self.progress(ExportProgress(self.current, fraction, min(1.0, done + _WEIGHTS[self.current] * fraction)))

    def finish(self) -> None:
        if self.current:
            self.report(1.0)
            self.seconds[self.current] = round(time.perf_counter() - self._t0, 3)
            self.current = ""


def _surface(req: ExportRequest, query: FieldQuery, st: _Stages) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Coarse grid -> occupied box -> fine grid -> iso -> marching cubes. Returns verts, faces, iso, voxel."""
    st.start("sample")
    lo, hi = (req.aabb[0], req.aabb[1]) if req.region is None else (req.region.aabb()[0], req.region.aabb()[1])
    coarse = grid.sample_grid(query, lo, hi, min(COARSE_RESOLUTION, req.resolution), lambda f: st.report(0.1 * f))
    box = grid.occupied_box(coarse, req.iso or grid.auto_iso(coarse))
    fine = grid.sample_grid(query, box[0], box[1], req.resolution, lambda f: st.report(0.1 + 0.9 * f))
    st.start("mesh")
    iso = float(req.iso) if req.iso is not None else grid.auto_iso(fine)
    if req.iso is None:  # automatic: hard surfaces at their own level (a level given is used as it is)
        raise_levels(fine, iso)
    verts, faces = mesh.extract_surface(fine, iso, lo, hi)
    if req.region is not None:
        verts = roi.clamp_to_region(verts, req.region, req.cut_floor)
    return verts, faces, iso, fine.voxel


def _in_region(req: ExportRequest, verts: np.ndarray) -> np.ndarray:
    """Vertices moved back onto the region's box: smoothing and decimation (a merged vertex's quadric optimum)
    can put them past its faces, and a cut must stay flat on the box."""
    return verts if req.region is None else roi.clamp_to_region(verts, req.region, req.cut_floor)


OrientedPoints = tuple[np.ndarray, np.ndarray]  # the full mesh's vertices and their normals [V,3] (normal_map)


def _cleanup(req: ExportRequest, verts: np.ndarray, faces: np.ndarray, voxel: float,
             st: _Stages) -> tuple[np.ndarray, np.ndarray, OrientedPoints | None]:
    """Oriented, small parts dropped, smoothed, decimated (and closed when asked); also the full mesh's vertices
    and normals, before decimation, when a normal map is to be baked from them."""
    st.start("cleanup")
    faces = mesh.orient_outward(verts, faces)
    verts, faces = mesh.keep_large_components(verts, faces, 1.0 if req.keep_largest else req.min_component)
    verts = _in_region(req, mesh.taubin_smooth(verts, faces, req.smooth))
    if req.format == "points":
        return verts, faces, None
    full = normal_map.oriented_points(verts, faces) if req.wants_normal_map() else None
    verts, faces = mesh.decimate(verts, faces, req.faces)
    verts = _in_region(req, verts)
    if req.watertight:
        verts, faces = manifold.make_watertight(verts, faces, NUDGE_VOXELS * voxel)
    return verts, faces, full


def _appearance(req: ExportRequest, query: FieldQuery, verts: np.ndarray, faces: np.ndarray, reach: float,
                st: _Stages, views: list[PhotoView] | None = None, layer: LayerTracer | None = None,
                full: OrientedPoints | None = None) -> tuple[formats.MeshData, str, dict | None, dict | None]:
    """Texture through a UV layout when the format carries one, else vertex colours; a normal map from the
    ``full`` mesh when given; the background shell when ``layer`` draws one; the texture then refined against
    ``views`` (the background's with it).
    Returns (data, UV method, refinement stats, background summary)."""
    normals = mesh.vertex_normals(verts, faces)
    if not req.textured:
        st.start("bake")
        colors = bake.shade_points(query, verts.astype(np.float32), normals.astype(np.float32), req.bake, reach, st.report)
        data = formats.MeshData(verts, faces, normals, colors=(colors * 255 + 0.5).astype(np.uint8))
        data, summary = _background(req, data, layer, views, st)
        return data, "none", None, summary
    st.start("unwrap")
    layout = uv.unwrap(verts, faces, req.texture, req.unwrap)
    v, n = verts[layout.vmap], normals[layout.vmap]
    st.start("bake")
    image, covered = bake.bake_texels(query, v, n, layout.uv, layout.faces, req.texture, req.bake, reach, st.report)
    data = formats.MeshData(v, layout.faces, n, uv=layout.uv, image=image, image_format=req.texture_format,
                            jpeg_quality=req.jpeg_quality)
    if full is not None:
        st.start("normals")
        normals_image, tangents = normal_map.bake_normal_map(v, layout.faces, layout.uv, n, req.texture, *full,
                                                             st.report, st.should_stop)
        data = replace(data, normal_image=normals_image, tangents=tangents)
    data, summary = _background(req, data, layer, views, st)
    stats = None
    minutes = req.refine_budget(bool(views))
    if views and minutes > 0:
        st.start("refine")
        data, stats = _refine(data, covered, views, minutes, req.view_term_budget(True), st)
    return data, layout.method, stats, summary


def _refine(data: formats.MeshData, covered: np.ndarray, views: list[PhotoView], minutes: float, view_s: float,
            st: _Stages) -> tuple[formats.MeshData, dict[str, Any]]:
    """The texture fitted to the photos within ``minutes``, then the object's view-dependent colour within
    ``view_s`` seconds (0: none) on the same samples; with a background, both textures on one atlas: its texels
    are the field's colours seen from the cameras' centre, which the photos correct (fern: 22.31 -> 22.67 dB in the
    same minute), and the object then occludes the background's samples as it does in the photos."""
    assert data.image is not None and data.uv is not None
    part = data.background
    packed = background.pack(data, covered) if part is not None and part.image is not None else None
    mesh = (data.image, covered, data.verts, data.faces, data.uv) if packed is None else (
        packed.image, packed.covered, packed.verts, packed.faces, packed.uv)
    image, result, samples = refine.refine_with_samples(*mesh, views, minutes, progress=st.report,
                                                        should_stop=st.should_stop)
    data = replace(data, image=image) if packed is None else background.unpack(data, image)
    stats = asdict(result)
    if view_s > 0 and samples is not None:
        fitted, watched = samples
        del samples  # the packed atlas's samples go as soon as the object's are cut out
        if packed is not None:
            fitted = _object_samples(data, image.shape[:2], fitted)
            watched = None if watched is None else _object_samples(data, image.shape[:2], watched)
        assert data.image is not None
        st.start("shine")
        term, fit = view_fit.fit_view_term(data.image, fitted, watched, view_s, refine.CLOCK,
                                           should_stop=st.should_stop, progress=st.report)
        data, stats["view_term"] = replace(data, view_term=term), {**asdict(fit), "kept": term is not None}
    return data, stats


def _object_samples(data: formats.MeshData, packed_shape: tuple[int, ...], samples: refine.Samples) -> refine.Samples:
    """The samples on the object's part of a packed atlas, in the object's own UVs."""
    inside, obj_uv = background.object_uv(data, (int(packed_shape[0]), int(packed_shape[1])), samples.uv)
    kept = samples.subset(inside)
    kept.uv = obj_uv
    return kept


def _background(req: ExportRequest, data: formats.MeshData, layer: LayerTracer | None,
                views: Sequence[PhotoView] | None, st: _Stages) -> tuple[formats.MeshData, dict[str, Any] | None]:
    """The shell around the cameras' centre with the export box left out, attached to ``data``, when the request
    wants one and ``layer`` can draw it; else ``data`` as it is and no summary."""
    if layer is None or not req.wants_background(True):
        return data, None
    st.start("background")
    centre = (np.mean([np.asarray(v.c2w)[:3, 3] for v in views], 0) if views else req.aabb.mean(0))
    side = int(np.clip(req.texture // 4 if req.textured else 256, 64, 1024)) // SHELL_STRIDE * SHELL_STRIDE
    shell = background.build_shell(layer(req.aabb), centre, side, views, SHELL_STRIDE, textured=req.textured,
                                   progress=st.report, should_stop=st.should_stop)
    if shell is None:
        return data, {"faces": 0, "tiles": 0}
    return background.attach(data, shell), {"faces": int(len(shell.faces)), "tiles": int(shell.tiles), "side": side}


def _compare(req: ExportRequest, data: formats.MeshData, views: Sequence[PhotoView],
             render_field: compare.FieldRenderer | None,
             query: FieldQuery, st: _Stages, work: Path) -> dict[str, Any]:
    """Mesh and field drawn from up to ``req.compare`` of ``views`` (spread over them), scored, written to work."""
    st.start("compare")
    pick = np.unique(np.linspace(0, len(views) - 1, min(req.compare, len(views))).round().astype(int))
    # a field without its own renderer: the plain volume renderer over its callables
    renderer = render_field or (lambda view: render_volume(query, req.aabb, view))
    items = compare.compare_views(data, [views[i] for i in pick], renderer, progress=st.report)
    return compare.write_comparison(items, work / compare.sidecar(req.out_path).name)


def _points(req: ExportRequest, query: FieldQuery, verts: np.ndarray, faces: np.ndarray, reach: float, st: _Stages,
            work: Path) -> list[Path]:
    """Area-weighted samples on the cleaned surface, coloured like texels."""
    st.start("bake")
    rng = np.random.default_rng(0)
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1)
    pick = rng.choice(len(faces), size=req.points, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(req.points)), rng.random(req.points)
    pts = (1 - r1)[:, None] * a[pick] + (r1 * (1 - r2))[:, None] * b[pick] + (r1 * r2)[:, None] * c[pick]
    nrm = (cross[pick] / np.maximum(area[pick], 1e-12)[:, None]).astype(np.float32)
    rgb = bake.shade_points(query, pts.astype(np.float32), nrm, req.bake, reach, st.report)
    if req.region is not None and req.place:
        pts, nrm = roi.place_points(req.region, pts, nrm)
    st.start("write")
    return formats.write_points(pts, nrm, (rgb * 255 + 0.5).astype(np.uint8), work / req.out_path.name)


def _write(req: ExportRequest, data: formats.MeshData, work: Path, st: _Stages) -> list[Path]:
    st.start("write")
    target = work / req.out_path.name
    if req.format == "fbx":
        obj_dir = work / "obj"
        obj_dir.mkdir()
        formats.write_obj(data, obj_dir / (req.out_path.stem + ".obj"))
        tools.run_blender_fbx(obj_dir / (req.out_path.stem + ".obj"), target)
        shutil.rmtree(obj_dir)
        return [target]
    writer = {"glb": formats.write_glb, "gltf": formats.write_gltf, "obj": formats.write_obj, "ply": formats.write_ply}
    files = writer[req.format](data, target)
    if req.compress == "none":
        return files
    st.start("compress")
    packed = work / "packed"
    packed.mkdir()
    tools.compress_gltf(target, packed / target.name, req.compress)
    for f in files:
        f.unlink()
    moved = []
    for p in sorted(packed.iterdir(), key=lambda p: p.name != target.name):  # main file first
        shutil.move(str(p), str(work / p.name))
        moved.append(work / p.name)
    return moved


def zip_files(files: list[Path], zip_path: Path) -> Path:
    """Pack ``files`` (flat, by name) into ``zip_path``; the main file first."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, arcname=f.name)
    return zip_path


def _publish(req: ExportRequest, files: list[Path], work: Path, st: _Stages) -> tuple[list[Path], Path | None]:
    """Move the finished files (and the comparison folder) from the work folder next to out_path (and zip the
    files when asked)."""
    st.start("package")
    archive = zip_files(files, work / (req.out_path.stem + ".zip")) if req.zip else None
    dest = req.out_path.parent
    pictures = work / compare.sidecar(req.out_path).name
    shutil.rmtree(dest / pictures.name, ignore_errors=True)  # an earlier export's pictures belong to another mesh
    if pictures.is_dir():
        shutil.move(str(pictures), str(dest / pictures.name))
    final = []
    for f in files + ([archive] if archive else []):
        shutil.move(str(f), str(dest / f.name))
        final.append(dest / f.name)
    return (final[:-1], final[-1]) if archive else (final, None)


def run_export(req: ExportRequest, density: Callable, color: Callable,
               progress: Callable[[ExportProgress], None] | None = None,
               should_stop: Callable[[], bool] | None = None,
               views: Sequence[PhotoView] | None = None, compare_views: Sequence[PhotoView] | None = None,
               render_field: compare.FieldRenderer | None = None, layer: LayerTracer | None = None) -> ExportResult:
    """Run a validated request (see ``make_request``); checks the external tool exists before any work.

    ``views``: the training photos (world-frame cameras) the texture is refined against; without them a
    request that asks for refinement (``refine_minutes`` > 0) is refused, one that leaves it open is baked only.
    ``compare_views``: photos (held-out ones, ideally) the finished mesh and the field are rendered from and
    scored (``req.compare`` of them; none: no comparison); ``render_field`` draws the field from a view (the
    engine's renderer), else the plain volume renderer over ``density`` and ``color`` does. ``layer``: rays
    through the field with a box left out (``LoadedField.tracer``), for the background shell.
    """
    photos = check_views(views) if views else None
    others = check_views(compare_views) if compare_views and req.compare > 0 and req.format != "points" else None
    if photos is None and req.refine_minutes:
        raise ValidationError(f"refine_minutes={req.refine_minutes:g} needs the training photos; none were given",
                              field="refine_minutes")
    if photos is None and req.view_dependence:
        raise ValidationError("view_dependence is fitted to the training photos; none were given",
                              field="view_dependence")
    if req.background and layer is None:
        raise ValidationError("background needs a field that can be drawn with the exported box left out (a "
                              "real capture trained with the fast method); this one cannot", field="background")
    if req.format == "fbx":
        tools.blender_command()
    if req.compress != "none":
        tools.gltf_transform_command()
    st = _Stages(progress, should_stop)
    original = density
    if req.region is not None:
        density = roi.masked_density(density, req.region, req.cut_floor)
    query = FieldQuery(density, color, should_stop=should_stop)
    whole = FieldQuery(original, color, should_stop=should_stop)  # the field as trained, for the comparison
    req.out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=req.out_path.parent) as tmp:
        work = Path(tmp)
        verts, faces, iso, voxel = _surface(req, query, st)
        verts, faces, full = _cleanup(req, verts, faces, voxel, st)
        reach = REACH_VOXELS * voxel
        if req.format == "points":
            files, method, counts = _points(req, query, verts, faces, reach, st, work), "none", (req.points, 0)
            stats, index, shell, bumped, shiny = None, None, None, False, False
        else:
            data, method, stats, shell = _appearance(req, query, verts, faces, reach, st, photos, layer, full)
            del full
            index = _compare(req, data, others, render_field, whole, st, work) if others else None
            if req.region is not None and req.place:
                data = roi.place_mesh(req.region, data)
            files, counts, bumped = _write(req, data, work, st), data.counts, data.normal_image is not None
            shiny = data.view_term is not None
        files, archive = _publish(req, files, work, st)
        st.finish()
    sizes = {p.name: p.stat().st_size for p in files + ([archive] if archive else [])}
    texture = req.texture if req.textured else 0
    pictures = compare.sidecar(req.out_path) if index is not None else None
    return ExportResult(req.format, files, sizes, counts[0], counts[1], iso, texture, method, req.compress,
                        st.seconds, archive, stats, index, pictures, shell, bumped, shiny)


def export_field(density: Callable, color: Callable, aabb: Any, out_path: str | Path, *, format: str,
                 progress: Callable[[ExportProgress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, views: Sequence[PhotoView] | None = None,
                 compare_views: Sequence[PhotoView] | None = None,
                 render_field: compare.FieldRenderer | None = None, layer: LayerTracer | None = None,
                 **options: Any) -> ExportResult:
    """Export a radiance field as a mesh or point cloud file.

    density(points[N,3]) -> [N] and color(points[N,3], dirs[N,3]) -> [N,3] take float32 torch tensors;
    aabb [2,3] bounds the export (world units, Z up). Options: resolution=512, faces=200_000,
    texture=2048 (0 = vertex colours), texture_format="auto"|"png"|"jpeg", compress="none"|"draco"|"meshopt",
    iso=None (automatic: hard surfaces raised per region, export.levels; the result's iso is the global level),
    smooth=0, min_component=0.05, bake="rays"|"surface", unwrap="auto"|"xatlas"|"tiles"|"pairs",
    points=500_000, zip=False, region=None (a box: center, size, rotation, floor_cut; the mesh is made inside it
    only and placed with its floor at height 0), remove_floor=None, keep_largest=False, place=True,
    refine_minutes=None (texture fitted to ``views``, the training photos as ``PhotoView``; None = a default
    with photos, 0 = the bake only), preset=None ("web" | "game" | "archive": 10k / 50k / 200k faces and a
    texture and refinement budget to match; options given beside it win), watertight=False (every edge joins
    exactly two faces: for printing and booleans; textured formats split vertices along UV seams, so it holds
    once vertices are welded by position), compare=3 (views of
    ``compare_views`` the mesh and the field are drawn from and scored, pictures in ``<stem>.compare/``;
    0 = none), background=None (the scene beyond ``aabb`` as a textured shell around the cameras, drawn by
    ``layer``; None = whenever ``layer`` is given and the export is a plain mesh of the whole box),
    normal_map=None (the full mesh's normals baked onto the decimated one, and a lit material; None = as the
    preset says: "game" makes one).
    Invalid requests raise ValidationError before any work.
    """
    req = make_request(format, out_path, aabb, **options)
    return run_export(req, density, color, progress, should_stop, views, compare_views, render_field, layer)
