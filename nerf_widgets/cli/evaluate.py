"""``nerf-widgets eval RUN --data DATA``: prints one JSON object (mean and per-view PSNR / SSIM / LPIPS)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="training run folder")
    parser.add_argument("--data", required=True, help="data folder with the held-out views")
    parser.add_argument("--split", default="test")
    parser.add_argument("--every", type=int, default=1, help="evaluate every K-th view of the split")
    parser.add_argument("--out", default=None, help="folder for the rendered views (default RUN/renders/SPLIT)")
    parser.add_argument("--no-lpips", action="store_true")


def run(args: argparse.Namespace) -> int:
    import json

    from nerf_widgets.engine.evaluate import evaluate_run

    print(json.dumps(evaluate_run(args.run, args.data, args.split, args.every, args.out, lpips=not args.no_lpips)))
    return 0
