"""Entry point: dispatches ``nerf-widgets SUBCOMMAND`` to a module that owns it.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is imported
only when used, so ``nerf-widgets --help`` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nerf_widgets.core.errors import NerfWidgetsError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("nerf_widgets.cli.train", "train a radiance field on a transforms.json / Blender folder"),
    "render": ("nerf_widgets.cli.render", "render the cameras of a transforms file"),
    "eval": ("nerf_widgets.cli.evaluate", "PSNR / SSIM / LPIPS on held-out views"),
    "video": ("nerf_widgets.cli.video", "render an orbit video (MP4)"),
    "poses": ("nerf_widgets.cli.poses", "estimate camera poses with COLMAP"),
    "poses-import": ("nerf_widgets.cli.poses_import", "import poses from transforms.json, COLMAP or LLFF"),
    "export": ("nerf_widgets.cli.export", "export a trained run as a mesh or point cloud"),
}


def build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser | None]:
    parser = argparse.ArgumentParser(prog="nerf-widgets", description="Photos to 3D: poses, NeRF training, export.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if argv and argv[0] == name:
            chosen = p
    return parser, chosen


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, chosen = build_parser(argv)
    if chosen is None:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    module.add_arguments(chosen)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except NerfWidgetsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
