"""Real-capture export benchmark: what the mesh keeps of the field on held-out photos, with and without the
background shell (issue 16's real-capture side).

    # a trained run first, e.g. 5 minutes of fern (its checkpoints under /tmp/fern5/marks/5min):
    .venv/bin/python tests/bench/train_lego.py --data ../shared/datasets/fern_llff --minutes 5 --every 1 \
        --run /tmp/fern5 --keep-marks
    .venv/bin/python tests/bench/export_real.py /tmp/fern5/marks/5min [RUN ...] [--background auto off]
        [--view-dependence on off] [--refine-minutes 1] [--out /tmp/export-real]

One JSON line per run and variant: the export's own comparison (mesh and field PSNR on 3 held-out photos at
320 px, the share of each photo the mesh covers), the background's faces and tiles, seconds per stage, the
file's size and the process's peak RSS so far (variants run in order, so the first line's RSS is its own).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

CHOICES = {"auto": None, "on": True, "off": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="trained run folders (config.json, checkpoints/)")
    parser.add_argument("--background", nargs="+", choices=list(CHOICES), default=["auto", "off"])
    parser.add_argument("--refine-minutes", type=float, default=None, help="default: the export's default")
    parser.add_argument("--view-dependence", nargs="+", choices=list(CHOICES), default=["auto"],
                        help="the view-dependent colour: each choice is its own export (auto: the default, on)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/export-real"))
    args = parser.parse_args()

    from nerf_widgets.engine import load_field
    from nerf_widgets.export import export_field
    from nerf_widgets.jobs.export_photos import field_layer, field_renderer, run_photos

    for run in args.runs:
        field = load_field(run)
        photos = run_photos(run, training=True, comparison=True)
        for choice, shine in [(b, v) for b in args.background for v in args.view_dependence]:
            options = {} if args.refine_minutes is None else {"refine_minutes": args.refine_minutes}
            if CHOICES[shine] is not None:
                options["view_dependence"] = CHOICES[shine]
            out = args.out / run.name / f"{choice}-{shine}" / "model.glb"
            t0 = time.perf_counter()
            result = export_field(field.density, field.color, field.aabb, out, format="glb", views=photos.training,
                                  compare_views=photos.comparison, render_field=field_renderer(field),
                                  layer=field_layer(field), background=CHOICES[choice], **options)
            c = result.comparison or {}
            print(json.dumps({
                "run": str(run), "background": choice, "view_dependence": shine, "view_term": result.view_term,
                "mesh_psnr": c.get("mesh_psnr"),
                "field_psnr": c.get("field_psnr"), "gap_db": c.get("gap_db"),
                "coverage": [v["coverage"] for v in c.get("views", [])],
                "per_view": [[v["name"], v["mesh_psnr"], v["field_psnr"]] for v in c.get("views", [])],
                "shell": result.background, "faces": result.faces, "bytes": result.sizes.get(out.name),
                "view_fit": (result.refine or {}).get("view_term"),
                "seconds": round(time.perf_counter() - t0, 1), "stages": result.seconds,
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            }), flush=True)


if __name__ == "__main__":
    main()
