"""Render cameras of a transforms file and evaluate a run on held-out views (CLI ``render`` / ``eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.data import load_cameras, load_dataset
from nerf_widgets.engine.field import load_field
from nerf_widgets.engine.sampler import ground_truth

__all__ = ["BACKGROUNDS", "evaluate_run", "render_cameras", "save_png"]

BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}


def save_png(image: np.ndarray, path: Path) -> None:
    """Write a [H,W,3] float image in [0,1] as an 8-bit RGB PNG (temp file + rename)."""
    from PIL import Image

    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB").save(tmp, format="PNG")
    tmp.replace(path)


def render_cameras(run_dir: str | Path, cameras_file: str | Path, out_dir: str | Path,
                   background: str = "white") -> list[Path]:
    """One PNG per frame of ``cameras_file``, named after the frame's file stem, at the camera's resolution."""
    if background not in BACKGROUNDS:
        raise ValidationError(f"background must be one of {', '.join(BACKGROUNDS)}")
    field = load_field(run_dir)
    cams = load_cameras(cameras_file)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for cam in cams:
        path = out / f"{cam.name}.png"
        save_png(field.render(cam, BACKGROUNDS[background]), path)
        written.append(path)
    return written


def evaluate_run(run_dir: str | Path, data_dir: str | Path, split: str = "test", every: int = 1,
                 out_dir: str | Path | None = None, lpips: bool = True) -> dict[str, Any]:
    """PSNR / SSIM / LPIPS (VGG and Alex, when the weights are installed) per view and mean, on white.

    Rendered views are written to ``out_dir`` (default RUN/renders/<split>) as PNGs.
    """
    from nerf_widgets.engine import metrics

    if every < 1:
        raise ValidationError("--every must be at least 1")
    data = load_dataset(data_dir)
    if split not in data.splits or not data.splits[split]:
        raise ValidationError(f"{data_dir} has no {split!r} split (has: {', '.join(data.splits)})")
    field = load_field(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "renders" / split
    out.mkdir(parents=True, exist_ok=True)
    nets = [n for n in ("vgg", "alex") if lpips and metrics.lpips_available(n)]
    views = []
    for i in data.splits[split][::every]:
        cam = data.cameras[i]
        rendered, gt = field.render(cam), ground_truth(data, i, cam)
        save_png(rendered, out / f"{cam.name}.png")
        row: dict[str, Any] = {"name": cam.name, "psnr": float(metrics.psnr(rendered, gt)),
                               "ssim": float(metrics.ssim(rendered, gt))}
        for net in nets:
            row[f"lpips_{net}"] = float(metrics.lpips(rendered, gt, net=net))
        row["lpips"] = row.get("lpips_vgg")
        views.append(row)
    keys = [k for k in views[0] if k != "name" and views[0][k] is not None]
    mean = {k: float(np.mean([v[k] for v in views])) for k in keys}
    return {"split": split, "every": every, "count": len(views), "step": field.step, **mean,
            "lpips": mean.get("lpips_vgg"), "views": views}
