"""``nerf-widgets export RUN --format glb|gltf|obj|ply|fbx|points --out PATH [--region run|none|BOX] [...]``.

Options are validated before the run is loaded, so a bad request fails at once with nothing written.
Progress goes to stderr, a JSON summary of the result to stdout. ``--region run`` (the default) meshes only the
region of interest the run was trained with (its config.json; the whole field when it had none), ``none`` the
whole field, and a JSON box or a .json file holding one (center, size, rotation or yaw_deg, floor_cut) that box.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nerf_widgets.core.errors import NotFoundError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from nerf_widgets.export.request import BAKE_MODES, COMPRESSIONS, FORMATS, PRESETS, TEXTURE_FORMATS, ExportRequest

    parser.add_argument("run", type=Path, help="trained run folder (runs/<job_id>/ with config.json, checkpoints/)")
    parser.add_argument("--format", required=True, choices=list(FORMATS), help="output format")
    parser.add_argument("--out", required=True, type=Path, help="output file (suffix must match the format)")
    parser.add_argument("--resolution", type=int, default=ExportRequest.resolution, help="density grid cells along the longest side")
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="sizes named for their use: " + ", ".join(f"{n} {v['faces'] // 1000}k faces"
                                                                     for n, v in PRESETS.items()))
    parser.add_argument("--faces", type=int, default=None,
                        help=f"target face count after decimation (default: the preset's, else {ExportRequest.faces})")
    parser.add_argument("--texture", type=int, default=None,
                        help=f"texture side in texels, 0 = vertex colours (default: the preset's, else {ExportRequest.texture})")
    parser.add_argument("--texture-format", choices=TEXTURE_FORMATS, default="auto", help="auto: JPEG when compressing")
    parser.add_argument("--compress", choices=COMPRESSIONS, default="none", help="glTF/GLB geometry compression")
    parser.add_argument("--iso", type=float, default=None, help="density iso-level (default: automatic)")
    parser.add_argument("--smooth", type=int, default=0, help="Taubin smoothing iterations")
    parser.add_argument("--bake", choices=BAKE_MODES, default="rays", help="texel colour: short rays or surface")
    parser.add_argument("--points", type=int, default=500_000, help="point count for --format points")
    parser.add_argument("--zip", action="store_true", help="also pack the written files into a .zip")
    parser.add_argument("--region", default="run",
                        help="run: the run's region of interest (default); none: the whole field; or a box as JSON "
                             "or a .json file (center, size, rotation|yaw_deg, floor_cut)")
    floor = parser.add_mutually_exclusive_group()
    floor.add_argument("--cut-floor", dest="remove_floor", action="store_true", default=None,
                       help="leave the region's floor slab out (default: the region's floor_cut)")
    floor.add_argument("--keep-floor", dest="remove_floor", action="store_false", help="keep the floor")
    parser.add_argument("--keep-largest", action="store_true", help="keep only the largest connected part")
    parser.add_argument("--watertight", action="store_true",
                        help="every edge joins exactly two faces (for printing and booleans)")
    back = parser.add_mutually_exclusive_group()
    back.add_argument("--background", dest="background", action="store_true", default=None,
                      help="add the scene beyond the box (walls, floor, far things) as a textured shell around the "
                           "cameras (default: for a real capture exported whole)")
    back.add_argument("--no-background", dest="background", action="store_false", help="the box's mesh only")
    bumps = parser.add_mutually_exclusive_group()
    bumps.add_argument("--normal-map", dest="normal_map", action="store_true", default=None,
                       help="bake the full mesh's normals onto the decimated one (a lit material, for engines and "
                            "Blender; default: with --preset game)")
    bumps.add_argument("--no-normal-map", dest="normal_map", action="store_false", help="no normal map")
    shine = parser.add_mutually_exclusive_group()
    shine.add_argument("--view-dependence", dest="view_dependence", action="store_true", default=None,
                       help="fit the colour that changes with the view (gloss) to the photos and store it in the "
                            "glb/gltf, for the MeshViewer (default: with refinement, except --preset web)")
    shine.add_argument("--no-view-dependence", dest="view_dependence", action="store_false",
                       help="the texture alone")
    parser.add_argument("--refine-minutes", type=float, default=None,
                        help="texture refinement against the run's training photos (default: a minute; 0 = off)")
    parser.add_argument("--compare", type=int, default=None,
                        help="held-out photos the mesh and the field are drawn from and scored, pictures in "
                             "OUT_STEM.compare/ (default 3; 0 = off)")


def _options(args: argparse.Namespace) -> dict:
    keys = ("preset", "resolution", "faces", "texture", "texture_format", "compress", "iso", "smooth", "bake", "points", "zip",
            "remove_floor", "keep_largest", "watertight", "refine_minutes", "compare", "background",
            "normal_map", "view_dependence")
    options = {k: getattr(args, k) for k in keys}
    for key in ("faces", "texture", "compare"):
        if options[key] is None:  # the preset's or the request's default
            del options[key]
    return options


def _region(value: str, run_dir: Path) -> dict | None:
    """The box ``--region`` names (validated by the export request): the run's, none, or given as JSON."""
    from nerf_widgets.core.errors import ValidationError

    if value == "none":
        return None
    if value == "run":
        from nerf_widgets.engine.checkpoint import read_run_config

        return read_run_config(run_dir)["config"].get("region")
    text = Path(value).read_text() if value.endswith(".json") and Path(value).is_file() else value
    try:
        box = json.loads(text)
    except ValueError as err:
        raise ValidationError(f"--region must be run, none, a JSON box or a .json file, not {value!r}") from err
    return box.get("region", box) if isinstance(box, dict) else box


def _print_progress(p: object) -> None:
    print(f"\r[{p.overall:6.1%}] {p.stage:<9s}", end="", file=sys.stderr, flush=True)  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    from nerf_widgets.export import export_field, make_request

    options = _options(args)
    region = None if args.region == "run" else _region(args.region, args.run)
    req = make_request(args.format, args.out, [[-1, -1, -1], [1, 1, 1]], region=region, **options)  # fail fast
    if not args.run.is_dir():
        raise NotFoundError(f"run folder {str(args.run)!r} does not exist")
    from nerf_widgets.engine import load_field

    options["region"] = _region(args.region, args.run)

    field = load_field(args.run)
    from nerf_widgets.jobs.export_photos import field_layer, field_renderer, run_photos

    layer = field_layer(field)
    req = make_request(args.format, args.out, field.aabb, **options)
    shell = req.wants_background(layer is not None)
    asked = run_photos(args.run, training=req.refine_budget(True) > 0 or shell,
                       comparison=req.compare > 0 and req.format != "points")
    result = export_field(field.density, field.color, field.aabb, args.out, format=args.format,
                          progress=_print_progress, views=asked.training, compare_views=asked.comparison,
                          render_field=field_renderer(field), layer=layer, **options)
    print(file=sys.stderr)
    if result.comparison is not None and result.comparison.get("gap_db") is not None:
        c = result.comparison
        print(f"mesh {c['mesh_psnr']:.2f} dB vs field {c['field_psnr']:.2f} dB on {len(c['views'])} photos "
              f"(lost {c['gap_db']:.2f} dB); pictures in {result.comparison_dir}", file=sys.stderr)
    print(json.dumps(result.to_dict()))
    return 0
