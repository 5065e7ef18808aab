"""``nerf-widgets poses-import FILE --images IMAGES_DIR --out DIR``: validate and convert existing poses."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE",
                        help="transforms.json (nerfstudio / instant-ngp / Blender), a folder of Blender split "
                             "files, a COLMAP sparse model folder (.txt or .bin) or LLFF poses_bounds.npy")
    parser.add_argument("--images", type=Path, default=None, metavar="IMAGES_DIR",
                        help="folder the frames' images are in (default: the poses file's folder)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="writes DIR/transforms.json ...")
    parser.add_argument("--no-normalize", action="store_true", help="keep the file's world frame and scale")


def run(args: argparse.Namespace) -> int:
    from nerf_widgets.cli.poses import print_progress, print_summary
    from nerf_widgets.poses.imports import import_poses

    report = import_poses(args.file, args.images, args.out, normalize=not args.no_normalize,
                          progress=print_progress)
    print_summary(report, args.out)
    return 0
