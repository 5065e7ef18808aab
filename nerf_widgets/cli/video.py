"""``nerf-widgets video RUN --out FILE.mp4``: an orbit video of a trained run."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="training run folder")
    parser.add_argument("--out", required=True, help="MP4 file to write")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", type=int, default=400, help="long side in pixels")


def run(args: argparse.Namespace) -> int:
    from nerf_widgets.engine.video import render_orbit_video

    print(render_orbit_video(args.run, args.out, args.frames, args.fps, args.size))
    return 0
