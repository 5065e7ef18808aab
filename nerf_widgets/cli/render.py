"""``nerf-widgets render RUN --cameras FILE.json --out DIR``: one PNG per frame of a transforms file."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="training run folder")
    parser.add_argument("--cameras", required=True, help="transforms file whose frames are rendered")
    parser.add_argument("--out", required=True, help="output folder (PNG named after each frame's file stem)")
    parser.add_argument("--background", default="white", choices=["white", "black"])


def run(args: argparse.Namespace) -> int:
    from nerf_widgets.engine.evaluate import render_cameras

    paths = render_cameras(args.run, args.cameras, args.out, args.background)
    print(f"wrote {len(paths)} images to {args.out}")
    return 0
