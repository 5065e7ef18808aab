"""``nerf-widgets train DATA --out RUN``: train a radiance field, printing progress."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="folder with transforms.json or transforms_{train,val,test}.json")
    parser.add_argument("--out", required=True, help="run folder (config.json, checkpoints/, metrics.jsonl)")
    parser.add_argument("--method", default="fast", choices=["fast", "vanilla"])
    parser.add_argument("--preset", default="balanced", choices=["quick", "balanced", "quality"])
    parser.add_argument("--max-minutes", type=float, default=None, help="training-time budget")
    parser.add_argument("--max-steps", type=int, default=None, help="step budget")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--batch-rays", type=int, default=None)
    parser.add_argument("--grad-accum", type=int, default=None)
    parser.add_argument("--early-stop", type=int, default=None, help="stop after N evaluations without improvement")
    parser.add_argument("--background", default=None, choices=["random", "white", "black"])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--refine-poses", action="store_true",
                        help="learn a small correction of each training camera (fast method; slower on a CPU)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if RUN has a checkpoint")
    parser.add_argument("--quiet", action="store_true")


class _Printer:
    """Progress to stderr: a line every ``every`` steps and after each evaluation."""

    def __init__(self, every: int = 50) -> None:
        self.every = every

    def on_step(self, info) -> None:  # type: ignore[no-untyped-def]
        if info.step % self.every == 0:
            print(f"step {info.step}/{info.max_steps}  loss {info.loss:.5f}  psnr {info.psnr:.2f}  "
                  f"{info.rays_per_s:,.0f} rays/s  {info.elapsed_s:.0f}s  eta {info.eta_s:.0f}s", file=sys.stderr)

    def on_eval(self, info) -> None:  # type: ignore[no-untyped-def]
        print(f"eval step {info.step}: psnr {info.psnr:.2f} ssim {info.ssim:.4f}", file=sys.stderr)

    def on_checkpoint(self, step: int, path: str) -> None:
        return None

    def should_stop(self) -> bool:
        return False


def run(args: argparse.Namespace) -> int:
    import json

    from nerf_widgets.engine.config import make_config
    from nerf_widgets.engine.trainer import train

    cfg = make_config(args.method, args.preset, max_minutes=args.max_minutes, max_steps=args.max_steps,
                      device=args.device, threads=args.threads, batch_rays=args.batch_rays, grad_accum=args.grad_accum,
                      early_stop_window=args.early_stop, background=args.background, seed=args.seed,
                      model={"pose_refine": True} if args.refine_poses else None)
    result = train(args.data, args.out, cfg, None if args.quiet else _Printer(), resume=not args.no_resume)
    print(json.dumps({"run": result.run_dir, "step": result.step, "elapsed_s": round(result.elapsed_s, 2),
                      "reason": result.reason, "psnr": result.last_psnr, "checkpoint": result.checkpoint,
                      "poses": result.poses}))
    return 0
