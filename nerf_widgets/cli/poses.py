"""``nerf-widgets poses IMAGES_DIR --out DIR``: estimate camera poses with COLMAP (pycolmap)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nerf_widgets.core.errors import NotFoundError

if TYPE_CHECKING:
    from nerf_widgets.poses.types import PoseProgress, PoseReport

__all__ = ["add_arguments", "print_progress", "print_summary", "run"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, metavar="IMAGES_DIR", help="folder of photos (PNG alpha = mask)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="writes DIR/transforms.json, DIR/points3D.ply and DIR/report.json")
    parser.add_argument("--matcher", default="auto", choices=["auto", "exhaustive", "sequential", "retrieval"])
    parser.add_argument("--mapper", default="auto", choices=["auto", "incremental", "global"])
    parser.add_argument("--camera-model", default="SIMPLE_RADIAL", choices=["SIMPLE_RADIAL", "OPENCV", "PINHOLE"])
    parser.add_argument("--no-masks", action="store_true", help="ignore alpha channels")


def print_progress(event: PoseProgress) -> None:
    stage, overall, msg = event.stage, event.overall, event.message
    line = f"[{overall * 100:5.1f}%] {stage:<9} {msg}"
    if sys.stderr.isatty():
        print(f"\r{line:<60}", end="\n" if overall >= 1.0 else "", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def print_summary(report: PoseReport, out: Path) -> None:
    print(f"registered {report.num_registered}/{report.num_images} images -> {out / 'transforms.json'}")
    if report.matcher:
        print(f"matcher: {report.matcher_reason}\nmapper: {report.mapper_reason}")
    if report.mean_reprojection_error is not None:
        print(f"points: {report.num_points3D}, mean track length {report.mean_track_length:.2f}, "
              f"mean reprojection error {report.mean_reprojection_error:.3f} px")
    for im in report.unregistered:
        print(f"  not posed: {im.name}: {im.reason}")


def run(args: argparse.Namespace) -> int:
    from nerf_widgets.poses.estimate import estimate_poses

    if not args.images.is_dir():
        raise NotFoundError(f"image folder {args.images} does not exist")
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    report = estimate_poses(paths, args.out, matcher=args.matcher, mapper=args.mapper, masks=not args.no_masks,
                            camera_model=args.camera_model, progress=print_progress)
    print_summary(report, args.out)
    return 0
