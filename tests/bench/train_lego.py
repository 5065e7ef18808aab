"""Benchmark: train on lego (400x400, all 100 training views) or a real capture, evaluate at fixed training times.

The training clock stops while evaluating (evaluation runs inside a step callback, which the trainer
does not count). Every 8th test view (25 views) is rendered at full resolution on white and scored with
PSNR, SSIM and LPIPS (VGG and Alex). One JSON line per point, then a summary line with peak memory.

    .venv/bin/python tests/bench/train_lego.py                 # fast, points at 1 2 5 10 20 30 min
    .venv/bin/python tests/bench/train_lego.py --minutes 1 2 5 10
    .venv/bin/python tests/bench/train_lego.py --method vanilla --minutes 2 5 10 --every 50 --eval-side 100 --no-lpips
    .venv/bin/python tests/bench/train_lego.py --quick         # smoke run: 0.5 min, 3 views
    # checkpoints to export from (tests/bench/export_lego.py --run RUN/marks/10min), CPU clock on a busy machine:
    .venv/bin/python tests/bench/train_lego.py --minutes 2 5 10 --clock cpu --no-lpips --run /work/runs/lego10 --keep-marks
    # real captures (unbounded path), pictures ground truth | render under tests/artifacts/ at 10 min:
    .venv/bin/python tests/bench/train_lego.py --data ../shared/datasets/fern_llff --minutes 2 5 10 15 --every 1 \
        --threads 2 --no-lpips --picture-at 10
    .venv/bin/python tests/bench/train_lego.py --data ../shared/datasets/fountain_p11 --minutes 5 10 --every 1 \
        --threads 2 --no-lpips --picture-at 10

Every line reports the process's user and system CPU time since training started (``sys_share`` = system /
(user + system): page faults and thread churn show there) and the load average, since a shared machine
slows everything. ``--clock cpu`` counts training time as process CPU time / threads instead of wall time,
so marks on a busy machine approximate a quiet one (optimistic where a step runs on one core).
"""

from __future__ import annotations

import argparse
import json
import os
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
                 eval_side: int | None = None, pictures: tuple[list[float], Path, str] | None = None) -> None:
        self.trainer, self.marks, self.views, self.lpips = trainer, sorted(marks), views, lpips
        self.eval_side, self.pictures = eval_side, pictures
        self.t0 = time.time()
        self.usage0 = resource.getrusage(resource.RUSAGE_SELF)
        self.rays = 0
        self.train_psnr: list[float] = []  # training-batch PSNR of the last steps (fit vs. generalisation)
        self.keep_marks = False

    def on_step(self, info) -> None:  # type: ignore[no-untyped-def]
        self.rays += self.trainer.cfg.batch_rays * self.trainer.cfg.grad_accum
        self.train_psnr = (self.train_psnr + [info.psnr])[-50:]
        if self.marks and info.elapsed_s >= self.marks[0] * 60:
            minutes = self.marks.pop(0)
            self.evaluate(minutes, info)
            if self.keep_marks:
                self.keep(minutes)

    def keep(self, minutes: float) -> None:
        """Save a checkpoint now and copy it as its own run folder RUN/marks/<m>min (the run keeps only two)."""
        import shutil

        path = self.trainer.save()
        mark = Path(self.trainer.run_dir) / "marks" / f"{minutes:g}min"
        (mark / "checkpoints").mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(self.trainer.run_dir) / "config.json", mark / "config.json")
        shutil.copy2(path, mark / "checkpoints" / path.name)

    def evaluate(self, minutes: float, info) -> None:  # type: ignore[no-untyped-def]
        from nerf_widgets.engine import metrics
        from nerf_widgets.engine.sampler import eval_view

        usage = resource.getrusage(resource.RUSAGE_SELF)
        user, system = usage.ru_utime - self.usage0.ru_utime, usage.ru_stime - self.usage0.ru_stime
        t0 = time.time()
        rows = []
        for n, i in enumerate(self.views):
            img, gt = eval_view(self.trainer.model, self.trainer.data, i, self.eval_side, self.trainer.device)
            if n == 0 and self.pictures and minutes in self.pictures[0]:
                save_side_by_side(gt, img, self.pictures[1] / f"{self.pictures[2]}_{minutes:g}min.png")
            row = {"psnr": metrics.psnr(img, gt), "ssim": metrics.ssim(img, gt)}
            if self.lpips:
                row.update(lpips_vgg=metrics.lpips(img, gt, net="vgg"), lpips_alex=metrics.lpips(img, gt, net="alex"))
            rows.append(row)
        mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
        print(json.dumps({"minutes": minutes, "train_s": round(info.elapsed_s, 1), "step": info.step, **mean,
                          "train_psnr": round(float(np.mean(self.train_psnr)), 2), "views": len(rows), "eval_side": self.eval_side or "full", "rays_per_s": round(info.rays_per_s),
                          "rays_per_s_mean": round(self.rays / max(info.elapsed_s, 1e-9)), "user_s": round(user, 1),
                          "sys_s": round(system, 1), "sys_share": round(system / max(user + system, 1e-9), 3),
                          "load": round(os.getloadavg()[0], 1), "eval_s": round(time.time() - t0, 1),
                          "wall_s": round(time.time() - self.t0, 1), "peak_rss_gib": round(peak_rss_gib(), 3)}),
              flush=True)

    def on_eval(self, info) -> None:  # type: ignore[no-untyped-def]
        return None

    def on_checkpoint(self, step: int, path: str) -> None:
        return None

    def should_stop(self) -> bool:
        return not self.marks


def save_side_by_side(gt: np.ndarray, img: np.ndarray, path: Path) -> None:
    """ground truth | render as one PNG (both [H,W,3] floats in [0,1])."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    both = np.concatenate([gt, np.ones((gt.shape[0], 4, 3), np.float32), img], 1)
    Image.fromarray((np.clip(both, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB").save(path)


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
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="training time: wall clock, or process CPU time / threads (a shared machine)")
    parser.add_argument("--picture-at", type=float, nargs="*", default=[],
                        help="marks (minutes) at which the first view is saved as ground truth | render")
    parser.add_argument("--artifacts", type=Path, default=Path(__file__).resolve().parents[1] / "artifacts")
    parser.add_argument("--background", choices=["white", "black", "random"], default=None,
                        help="training background (default: white for masked data, random for opaque photos)")
    parser.add_argument("--run", type=Path, default=None, help="run folder (default: a temp folder)")
    parser.add_argument("--keep-marks", action="store_true",
                        help="save a checkpoint at every mark as its own run folder RUN/marks/<m>min (to export from)")
    args = parser.parse_args(argv)

    from nerf_widgets.engine.config import make_config
    from nerf_widgets.engine.data import load_dataset
    from nerf_widgets.engine.trainer import Trainer

    marks = [0.25, 0.5] if args.quick else args.minutes
    t0 = time.time()
    data = load_dataset(args.data)
    # masked objects train on white (as they are scored); opaque photos keep the default random background,
    # what a user's run does: a random colour behind every ray makes the field explain every pixel
    cfg = make_config(args.method, "quality", max_minutes=max(marks), max_steps=10**7, eval_every=0,
                      checkpoint_every=0, threads=args.threads, background=args.background or
                      ("white" if data.has_alpha else "random"), batch_rays=args.batch_rays,
                      model={k: json.loads(v) for k, v in (item.split("=", 1) for item in args.model)})
    views = data.splits["test"][:: args.every][: 3 if args.quick else None]
    run = args.run or Path(tempfile.mkdtemp(prefix="bench_lego_"))
    run.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(data, run, cfg, None)
    if args.keep_marks:  # what train() writes: the run folder is then loadable (load_field, export)
        from nerf_widgets.engine.checkpoint import write_json_atomic
        from nerf_widgets.engine.models import scene_dict

        write_json_atomic(run / "config.json", {"config": cfg.to_json(), "scene": scene_dict(data),
                                                "data_dir": str(args.data.resolve())})
    if args.clock == "cpu":
        threads = args.threads or len(os.sched_getaffinity(0))
        if hasattr(trainer, "clock"):
            trainer.clock = lambda: time.process_time() / threads
        else:  # an older engine (before/after runs): its trainer reads time.perf_counter
            import types

            from nerf_widgets.engine import trainer as trainer_module

            trainer_module.time = types.SimpleNamespace(perf_counter=lambda: time.process_time() / threads)  # type: ignore[attr-defined]
    cb = Checkpoints(trainer, marks, views, not args.no_lpips, args.eval_side,
                     (args.picture_at, args.artifacts, args.data.resolve().name))
    cb.keep_marks = args.keep_marks
    trainer.callbacks.callbacks.append(cb)
    print(json.dumps({"event": "start", "method": args.method, "threads": args.threads or "all", "load_s":
                      round(time.time() - t0, 1), "train_views": len(data.splits["train"]), "eval_views": len(views),
                      "marks_min": marks, "model": cfg.model, "clock": args.clock,
                      "load": round(os.getloadavg()[0], 1)}), flush=True)
    cfg.max_minutes = max(marks) + 1.0  # the callback stops training after the last mark
    trainer.cfg.max_minutes = cfg.max_minutes
    trainer.run()
    print(json.dumps({"event": "end", "steps": trainer.step, "train_s": round(trainer.elapsed, 1),
                      "peak_rss_gib": round(peak_rss_gib(), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
