"""Time PSNR / SSIM / LPIPS-VGG / LPIPS-Alex on a 400x400 lego test view vs. a blurred copy; one JSON line each."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from nerf_widgets.engine.metrics import get_lpips_model, lpips, psnr, ssim


def load_view(path: Path) -> np.ndarray:
    rgba = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])  # white background, [400, 400, 3]


def timed(fn: Callable[[], float], repeats: int) -> tuple[float, float, float]:
    """(value, best wall seconds, CPU seconds of that run): CPU time shows the cost when other work shares the cores."""
    fn()  # warm-up
    best = (math.inf, math.inf)
    value = math.nan
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return float(value), best[0], best[1]


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared/datasets/lego"
    target = torch.from_numpy(load_view(data / "test" / "r_0.png"))
    pred = torch.from_numpy(gaussian_filter(target.numpy(), sigma=(1.0, 1.0, 0))).clamp(0, 1)
    common = {"threads": torch.get_num_threads(), "shape": list(target.shape), "loadavg_1m": os.getloadavg()[0]}
    for net in ("vgg", "alex"):
        t0 = time.perf_counter()
        get_lpips_model(net)
        print(json.dumps({"metric": f"lpips_{net}_load", "seconds": round(time.perf_counter() - t0, 3), **common}))
    cases = {
        "psnr": lambda: psnr(pred, target),
        "ssim": lambda: ssim(pred, target),
        "lpips_vgg": lambda: lpips(pred, target, net="vgg"),
        "lpips_alex": lambda: lpips(pred, target, net="alex"),
    }
    for name, fn in cases.items():
        value, wall, cpu = timed(fn, repeats=3)
        row = {"metric": name, "value": round(value, 5), "wall_s": round(wall, 4), "cpu_s": round(cpu, 4), **common}
        print(json.dumps(row))


if __name__ == "__main__":
    main()
