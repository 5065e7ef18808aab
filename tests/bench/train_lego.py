"""Benchmark: train on lego (400x400, all 100 training views), evaluate at fixed training times.

The training clock stops while evaluating (evaluation runs inside a step callback, which the trainer
does not count). Every 8th test view (25 views) is rendered at full resolution on white and scored with
PSNR, SSIM and LPIPS (VGG and Alex). One JSON line per point, then a summary line with peak memory.

    .venv/bin/python tests/bench/train_lego.py                 # fast, points at 1 2 5 10 20 30 min
    .venv/bin/python tests/bench/train_lego.py --minutes 1 2 5 10
    .venv/bin/python tests/bench/train_lego.py --method vanilla --minutes 2 5 10 --every 50 --eval-side 100 --no-lpips
    .venv/bin/python tests/bench/train_lego.py --quick         # smoke run: 0.5 min, 3 views
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "lego"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class Checkpoints:
    """Step callback that evaluates when the training clock crosses the next requested minute mark."""

    def __init__(self, trainer, marks: list[float], views: list[int], lpips: bool,  # type: ignore[no-untyped-def]
                 eval_side: int | None = None) -> None:
        self.trainer, self.marks, self.views, self.lpips = trainer, sorted(marks), views, lpips
        self.eval_side = eval_side
        self.t0 = time.time()

    def on_step(self, info) -> None:  # type: ignore[no-untyped-def]
        if self.marks and info.elapsed_s >= self.marks[0] * 60:
            self.evaluate(self.marks.pop(0), info)

    def evaluate(self, minutes: float, info) -> None:  # type: ignore[no-untyped-def]
        from nerf_widgets.engine import metrics
        from nerf_widgets.engine.sampler import eval_view

        t0 = time.time()
        rows = []
        for i in self.views:
            img, gt = eval_view(self.trainer.model, self.trainer.data, i, self.eval_side, self.trainer.device)
            row = {"psnr": metrics.psnr(img, gt), "ssim": metrics.ssim(img, gt)}
            if self.lpips:
                row.update(lpips_vgg=metrics.lpips(img, gt, net="vgg"), lpips_alex=metrics.lpips(img, gt, net="alex"))
            rows.append(row)
        mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
        print(json.dumps({"minutes": minutes, "train_s": round(info.elapsed_s, 1), "step": info.step, **mean,
                          "views": len(rows), "eval_side": self.eval_side or "full", "rays_per_s": round(info.rays_per_s), "eval_s": round(time.time() - t0, 1),
                          "wall_s": round(time.time() - self.t0, 1), "peak_rss_gib": round(peak_rss_gib(), 3)}),
              flush=True)

    def on_eval(self, info) -> None:  # type: ignore[no-untyped-def]
        return None

    def on_checkpoint(self, step: int, path: str) -> None:
        return None

    def should_stop(self) -> bool:
        return not self.marks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--method", default="fast", choices=["fast", "vanilla"])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5, 10, 20, 30])
    parser.add_argument("--every", type=int, default=8, help="evaluate every K-th test view")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-lpips", action="store_true")
    parser.add_argument("--batch-rays", type=int, default=None, help="rays per step (default: the method's)")
    parser.add_argument("--eval-side", type=int, default=None,
                        help="evaluate on views downscaled to this long side (vanilla: 112 s per 100x100 view on 2 cores)")
    parser.add_argument("--quick", action="store_true", help="smoke run: points at 0.25 and 0.5 min on 3 views")
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=JSON",
                        help="model options, e.g. fit_box=false 'res_schedule=[[0,64],[1600,192]]'")
    parser.add_argument("--run", type=Path, default=None, help="run folder (default: a temp folder)")
    args = parser.parse_args(argv)

    from nerf_widgets.engine.config import make_config
    from nerf_widgets.engine.data import load_dataset
    from nerf_widgets.engine.trainer import Trainer

    marks = [0.25, 0.5] if args.quick else args.minutes
    cfg = make_config(args.method, "quality", max_minutes=max(marks), max_steps=10**7, eval_every=0,
                      checkpoint_every=0, threads=args.threads, background="white",
                      batch_rays=args.batch_rays,
                      model={k: json.loads(v) for k, v in (item.split("=", 1) for item in args.model)})
    t0 = time.time()
    data = load_dataset(args.data)
    views = data.splits["test"][:: args.every][: 3 if args.quick else None]
    run = args.run or Path(tempfile.mkdtemp(prefix="bench_lego_"))
    run.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(data, run, cfg, None)
    cb = Checkpoints(trainer, marks, views, not args.no_lpips, args.eval_side)
    trainer.callbacks.callbacks.append(cb)
    print(json.dumps({"event": "start", "method": args.method, "threads": args.threads or "all", "load_s":
                      round(time.time() - t0, 1), "train_views": len(data.splits["train"]), "eval_views": len(views),
                      "marks_min": marks, "model": cfg.model}), flush=True)
    cfg.max_minutes = max(marks) + 1.0  # the callback stops training after the last mark
    trainer.cfg.max_minutes = cfg.max_minutes
    trainer.run()
    print(json.dumps({"event": "end", "steps": trainer.step, "train_s": round(trainer.elapsed, 1),
                      "peak_rss_gib": round(peak_rss_gib(), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
