"""What an export may ask for, checked before any work starts.

Every limit lives here so the CLI, the studio API and the widgets reject the same requests with the
same messages (``ValidationError``, nothing written).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.core.region import Region

__all__ = [
    "BAKE_MODES",
    "COMPRESSIONS",
    "DEFAULT_REFINE_MINUTES",
    "FORMATS",
    "FormatSpec",
    "ExportRequest",
    "LIMITS",
    "PRESETS",
    "STAGES",
    "TEXTURE_FORMATS",
    "VIEW_TERM_FORMATS",
    "make_request",
]


@dataclass(frozen=True)
class FormatSpec:
    """One output format: file suffix, whether it writes several files, whether it carries a texture."""

    name: str
    suffix: str
    multi_file: bool
    textured: bool
    description: str


FORMATS: dict[str, FormatSpec] = {
    "glb": FormatSpec("glb", ".glb", False, True, "binary glTF 2.0, texture embedded"),
    "gltf": FormatSpec("gltf", ".gltf", True, True, "glTF 2.0 JSON + .bin + texture image"),
    "obj": FormatSpec("obj", ".obj", True, True, "Wavefront OBJ + MTL + texture image"),
    "ply": FormatSpec("ply", ".ply", False, False, "binary PLY mesh with vertex colours"),
    "fbx": FormatSpec("fbx", ".fbx", False, True, "binary FBX (written by Blender), texture embedded"),
    "points": FormatSpec("points", ".ply", False, False, "binary PLY coloured point cloud"),
}
COMPRESSIONS = ("none", "draco", "meshopt")
TEXTURE_FORMATS = ("auto", "png", "jpeg")  # auto: JPEG when compressing (a small file was asked for), else PNG
BAKE_MODES = ("rays", "surface")
UNWRAP_METHODS = ("auto", "xatlas", "tiles", "pairs")
# Stages in order; progress reports (stage, fraction of that stage) and cancellation is checked between them.
STAGES = ("sample", "mesh", "cleanup", "unwrap", "bake", "normals", "background", "refine", "shine", "compare", "write",
          "compress", "package")
# minutes of texture refinement against the training photos when the request leaves it open and photos exist
DEFAULT_REFINE_MINUTES = 1.0
# the view-dependent colour's fit (stage "shine"), as a share of the refinement's minutes, on top of them; it also
# stops after view_fit.MAX_EPOCHS passes (lego, 30-minute run, OpenGL on 25 test views: 27.87 -> 28.40 dB in 30 s)
VIEW_TERM_SHARE = 0.5
VIEW_TERM_FORMATS = ("glb", "gltf")
# sizes named for their use; options given with a preset override its values. A preset's refine_minutes and
# normal_map are what an open value (None) means: refinement when the run has its training photos, a normal map
# when the format carries a texture; never a demand for either
PRESETS: dict[str, dict[str, Any]] = {
    # a page: small download, quick to draw (no view-dependent colour: three more textures to fetch)
    "web": {"faces": 10_000, "texture": 1024, "refine_minutes": 0.5, "view_dependence": False},
    # a real-time asset, lit by the engine: the detail 50k faces lose comes back through a normal map (lego,
    # 30-minute run: shading normals 24.2 deg from the full mesh's without it, 8.4 deg with it)
    "game": {"faces": 50_000, "texture": 2048, "refine_minutes": 1.0, "normal_map": True},
    "archive": {"faces": 200_000, "texture": 4096, "refine_minutes": 3.0},  # the most detail the field holds
}
OPEN_PRESET_VALUES = ("refine_minutes", "normal_map", "view_dependence")  # preset entries that fill an open option, not a size

# name -> (min, max); texture 0 means "no texture, per-vertex colours".
LIMITS: dict[str, tuple[float, float]] = {
    "resolution": (32, 512),
    "faces": (500, 5_000_000),
    "texture": (64, 8192),
    "points": (1_000, 20_000_000),
    "smooth": (0, 50),
    "min_component": (0.0, 1.0),
    "jpeg_quality": (1, 100),
    "refine_minutes": (0, 60),
    "compare": (0, 12),
}


@dataclass(frozen=True)
class ExportRequest:
    """A validated export: build it with :func:`make_request`, never by hand."""

    format: str
    out_path: Path
    aabb: np.ndarray  # [2, 3] float64, min row then max row, world units
    # grid cells along the longest side of the occupied box. 512, not 256: the field's density is not linear between
    # its own corners and marching cubes on a finer sampling follows thin parts; 10-minute lego, mesh-render PSNR
    # with the texture baked only / refined 1 min: 25.07 / 25.88 dB at 256, 26.14 / 26.97 dB at 512 (200k faces
    # either way), for ~15 s more and ~0.7 GB more memory
    resolution: int = 512
    faces: int = 200_000  # target face count after quadric decimation
    texture: int = 2048  # texture side in texels; 0 = per-vertex colours only
    texture_format: str = "auto"
    jpeg_quality: int = 90
    compress: str = "none"
    iso: float | None = None  # density level; None = calibrated from the grid (grid.auto_iso), raised per region (levels)
    smooth: int = 0  # Taubin iterations (0 = off)
    min_component: float = 0.05  # drop components with fewer faces than this fraction of the largest
    bake: str = "rays"
    unwrap: str = "auto"
    points: int = 500_000  # samples for format="points"
    zip: bool = False  # also pack the files into out_path.with_suffix(".zip")
    region: Any = None  # a core.region.Region (or its dict): mesh only inside this box; None = the whole aabb
    remove_floor: bool | None = None  # leave the floor slab out; None = the region's floor_cut
    keep_largest: bool = False  # keep only the largest connected part (the object, not what touches the box)
    watertight: bool = False  # every edge joins exactly two faces (printing, booleans): pinches from decimation cut
    # the scene beyond the box (walls, floor, what is far away) as a textured shell around the cameras; None = when
    # the field can draw it (an unbounded capture) and the export is a plain textured mesh of the whole box
    background: bool | None = None
    place: bool = True  # with a region: floor at height 0, the region's up as the model's up
    refine_minutes: float | None = None  # texture fit to the training photos; None = the preset's or the default, with photos
    # the full mesh's normals baked onto the decimated one, with a lit material (the colour texture stays the baked
    # radiance); None = the preset's choice (game), else none
    normal_map: bool | None = None
    # colour that changes with the view (gloss, sheen), fitted to the photos after refinement and stored as a glTF
    # extension that the MeshViewer draws and other programs skip; None = with refinement, unless the preset says no
    view_dependence: bool | None = None
    compare: int = 3  # views the mesh and the field are rendered from and scored, when the caller has photos
    preset: str | None = None  # the PRESETS entry the sizes came from (recorded; its values are already applied)

    def wants_background(self, can_draw: bool) -> bool:
        """Whether the shell is made: asked for, or left open and the field can draw it for a plain mesh."""
        if self.background is not None:
            return self.background
        # textured formats only: PLY has no parts, so its shell would be welded into the object's one mesh
        return can_draw and self.textured and not self.watertight and self.region is None

    def wants_normal_map(self) -> bool:
        """Whether a normal map is baked: asked for, or left open and the preset makes one for a textured mesh."""
        if self.normal_map is not None:
            return self.normal_map
        return self.textured and bool(self.preset and PRESETS[self.preset].get("normal_map", False))

    def view_term_budget(self, have_photos: bool) -> float:
        """Seconds for the view-dependent colour's fit (0 = none): it needs refinement and a glTF without
        compression (gltf-transform drops extensions it does not know)."""
        minutes = self.refine_budget(have_photos)
        if minutes == 0 or self.format not in VIEW_TERM_FORMATS or self.compress != "none":
            return 0.0
        wanted = self.view_dependence
        if wanted is None:
            wanted = bool(PRESETS[self.preset].get("view_dependence", True)) if self.preset else True
        return 60.0 * VIEW_TERM_SHARE * minutes if wanted else 0.0

    def refine_budget(self, have_photos: bool) -> float:
        """Minutes of texture refinement this request gets (0 = keep the bake)."""
        if not self.textured or not have_photos:
            return 0.0
        if self.refine_minutes is not None:
            return float(self.refine_minutes)
        return float(PRESETS[self.preset]["refine_minutes"]) if self.preset else DEFAULT_REFINE_MINUTES

    @property
    def spec(self) -> FormatSpec:
        return FORMATS[self.format]

    @property
    def textured(self) -> bool:
        return self.spec.textured and self.texture > 0

    @property
    def cut_floor(self) -> bool:
        """Whether the floor slab of the region is left out."""
        return self.region is not None and (self.remove_floor if self.remove_floor is not None
                                            else bool(self.region.floor_cut))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_range(name: str, value: Any, integer: bool = True) -> None:
    lo, hi = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise ValidationError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}", field=name)
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be between {_num(lo)} and {_num(hi)}, got {value!r}", field=name, value=value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ValidationError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}", field=name, value=value)


def _check_aabb(aabb: Any) -> np.ndarray:
    try:
        box = np.asarray(aabb.detach().cpu() if hasattr(aabb, "detach") else aabb, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"aabb must be a [2, 3] array of numbers: {err}", field="aabb") from err
    if box.shape != (2, 3) or not np.all(np.isfinite(box)) or not np.all(box[1] > box[0]):
        raise ValidationError("aabb must be [[xmin, ymin, zmin], [xmax, ymax, zmax]] with max > min", field="aabb")
    return box


def _check_out_path(out_path: Any, spec: FormatSpec) -> Path:
    path = Path(out_path)
    if path.suffix.lower() != spec.suffix:
        raise ValidationError(
            f"format {spec.name!r} writes a {spec.suffix} file; out path {str(path)!r} has another suffix",
            field="out_path",
        )
    if path.exists() and path.is_dir():
        raise ValidationError(f"out path {str(path)!r} is a directory", field="out_path")
    return path


def _check_refine(req: ExportRequest) -> None:
    if req.refine_minutes is None:
        return
    _check_range("refine_minutes", req.refine_minutes, integer=False)
    if req.refine_minutes > 0 and not req.textured:
        raise ValidationError(f"refine_minutes refines a texture; format {req.format!r} with texture={req.texture} "
                              "has none (use glb, gltf, obj or fbx with a texture, or refine_minutes=0)",
                              field="refine_minutes")


def _check_view_dependence(req: ExportRequest) -> None:
    if req.view_dependence is None:
        return
    if not isinstance(req.view_dependence, bool):
        raise ValidationError(f"view_dependence must be True, False or None, got {req.view_dependence!r}",
                              field="view_dependence")
    if not req.view_dependence:
        return
    if req.format not in VIEW_TERM_FORMATS or not req.textured:
        raise ValidationError(f"view_dependence is stored in a glTF file's texture; format {req.format!r} with "
                              f"texture={req.texture} cannot carry it (use glb or gltf with a texture)",
                              field="view_dependence")
    if req.compress != "none":
        raise ValidationError(f"view_dependence does not survive compression {req.compress!r} (gltf-transform drops "
                              "extensions it does not know); use compress='none' or view_dependence=False",
                              field="view_dependence")
    if req.refine_minutes == 0:
        raise ValidationError("view_dependence is fitted to the photos after texture refinement; refine_minutes=0 "
                              "turns that off", field="view_dependence")


def make_request(format: str, out_path: str | Path, aabb: Any, **options: Any) -> ExportRequest:
    """Check every option and return a frozen request; raises ``ValidationError`` on the first bad one."""
    _check_choice("format", format, list(FORMATS))
    known = set(ExportRequest.__dataclass_fields__) - {"format", "out_path", "aabb"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValidationError(f"unknown export option(s): {', '.join(unknown)}", field=unknown[0])
    if options.get("preset") is not None:
        _check_choice("preset", options["preset"], list(PRESETS))
        sizes = {k: v for k, v in PRESETS[options["preset"]].items() if k not in OPEN_PRESET_VALUES}
        options = {**sizes, **options}
    req = replace(ExportRequest(format, _check_out_path(out_path, FORMATS[format]), _check_aabb(aabb)), **options)
    for name in ("resolution", "faces", "points", "smooth", "jpeg_quality", "compare"):
        _check_range(name, getattr(req, name))
    if req.texture != 0:
        _check_range("texture", req.texture)
    _check_range("min_component", req.min_component, integer=False)
    _check_choice("compress", req.compress, COMPRESSIONS)
    _check_choice("texture format", req.texture_format, TEXTURE_FORMATS)
    _check_choice("bake mode", req.bake, BAKE_MODES)
    _check_choice("unwrap method", req.unwrap, UNWRAP_METHODS)
    if req.compress != "none" and req.format not in ("glb", "gltf"):
        raise ValidationError(f"compression {req.compress!r} applies to glb/gltf only, not {req.format!r}", field="compress")
    if req.iso is not None and not (isinstance(req.iso, (int, float)) and np.isfinite(req.iso) and req.iso > 0):
        raise ValidationError(f"iso must be a positive number, got {req.iso!r}", field="iso")
    for name in ("keep_largest", "place", "watertight"):
        if not isinstance(getattr(req, name), bool):
            raise ValidationError(f"{name} must be True or False, got {getattr(req, name)!r}", field=name)
    if req.background is not None and not isinstance(req.background, bool):
        raise ValidationError(f"background must be True, False or None, got {req.background!r}", field="background")
    if req.background:
        clash = ("a point cloud" if req.format == "points" else "a watertight mesh" if req.watertight
                 else "a region (the object alone)" if req.region is not None else "")
        if clash:
            raise ValidationError(f"background adds an open shell around the scene; it does not go with {clash}",
                                  field="background")
    if req.normal_map is not None and not isinstance(req.normal_map, bool):
        raise ValidationError(f"normal_map must be True, False or None, got {req.normal_map!r}", field="normal_map")
    if req.normal_map and not req.textured:
        raise ValidationError(f"a normal map is a texture; format {req.format!r} with texture={req.texture} has none "
                              "(use glb, gltf, obj or fbx with a texture)", field="normal_map")
    if req.watertight and req.format == "points":
        raise ValidationError("watertight applies to meshes; a point cloud has no surface to close", field="watertight")
    if req.remove_floor is not None and not isinstance(req.remove_floor, bool):
        raise ValidationError(f"remove_floor must be True, False or None, got {req.remove_floor!r}", field="remove_floor")
    _check_refine(req)
    _check_view_dependence(req)
    region = Region.from_dict(req.region) if req.region is not None else None
    image = req.texture_format if req.texture_format != "auto" else ("png" if req.compress == "none" else "jpeg")
    return replace(req, resolution=int(req.resolution), faces=int(req.faces), texture=int(req.texture), compare=int(req.compare),
                   texture_format=image, region=region)
