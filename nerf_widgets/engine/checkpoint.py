"""Run-folder layout and atomic checkpoints.

RUN/config.json       TrainConfig + scene (transform, aabb, bounded, near) + data folder
RUN/checkpoints/      ckpt_<step>.pt (temp file + os.replace; the newest two are kept)
RUN/metrics.jsonl     one JSON object per logged step / evaluation / checkpoint / end

The naming (``checkpoint_name``, ``list_checkpoints``) is torch-free: the jobs layer asks it whether a run
has a model without loading torch. torch is imported only to save or load one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import NotFoundError, ValidationError

__all__ = ["checkpoint_name", "checkpoint_step", "latest_checkpoint", "list_checkpoints", "load_checkpoint",
           "read_run_config", "save_checkpoint", "write_json_atomic"]

KEEP = 2
CHECKPOINT_GLOB = "ckpt_*.pt"


def checkpoint_name(step: int) -> str:
    """``ckpt_<step, 8 digits>.pt``: names sort by step."""
    return f"ckpt_{step:08d}.pt"


def checkpoint_step(path: str | Path) -> int:
    """The step a checkpoint file was written at (from its name)."""
    return int(Path(path).stem.split("_")[1])


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first (none when the folder is missing)."""
    return sorted((Path(run_dir) / "checkpoints").glob(CHECKPOINT_GLOB))


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise NotFoundError(f"{run_dir} is not a training run (no config.json)", path=str(path))
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValidationError(f"{path} is not valid JSON: {err}") from err


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def save_checkpoint(run_dir: str | Path, step: int, state: dict[str, Any]) -> Path:
    """Write ``state`` as checkpoints/ckpt_<step>.pt atomically and drop all but the newest ``KEEP``."""
    import torch

    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(step)
    tmp = folder / f".{path.name}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)
    for old in list_checkpoints(run_dir)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise ValidationError(f"checkpoint {path} is unreadable: {err}", path=str(path)) from err
