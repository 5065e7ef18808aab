"""Plain job functions for runner tests: the runner must not care what a job computes."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerf_widgets.core.ids import new_id
from nerf_widgets.jobs import JobContext, JobSpec, ResourceRequest, register_job_type
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow


def counting_job(ctx: JobContext) -> dict[str, Any]:
    """Counts to ``steps``; checkpoints its step to run_dir every ``ckpt_every``; resumes from it.

    ``fail_at``: raise at that step on the first attempt only (a forced, transient failure).
    """
    p = ctx.params
    ckpt = Path(ctx.run_dir or ".") / "ckpt.json"
    start = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    ctx.report_progress(stage="train", resumed_from=start)
    for step in range(start + 1, p["steps"] + 1):
        ctx.check()
        time.sleep(p.get("sleep", 0.01))
        if step == p.get("fail_at") and ctx.attempt == 1:
            raise RuntimeError(f"forced failure at step {step}")
        psnr = 10 + 20 * (1 - math.exp(-step / 50))
        ctx.report_step(step, step * 0.01, {"loss": 10 ** (-psnr / 10), "psnr": psnr},
                        max_steps=p["steps"], fraction=step / p["steps"])
        if step % p.get("ckpt_every", 10) == 0:
            ctx.flush_metrics()  # every step up to the checkpoint is stored before the checkpoint exists
            tmp = ckpt.with_name(".ckpt.json.tmp")
            tmp.write_text(json.dumps({"step": step}))
            os.replace(tmp, ckpt)
            ctx.report_progress(checkpoint_step=step)
    return {"final_step": p["steps"]}


def counting_factory(row: JobRow, db: Database) -> JobSpec:
    return JobSpec(counting_job, ResourceRequest(device="cpu", memory_bytes=int(row.params.get("memory", 0))))


register_job_type("test_count", counting_factory)


def make_project(db: Database) -> str:
    pid = new_id("prj")
    project_store.insert_project(db=db, project_id=pid, name=f"p-{pid}", description="", state="Created")
    return pid


WAIT_S = 120.0  # a failure guard only: every wait below ends on an event or a count, never on the clock


def wait_until(pred: Callable[[], object], timeout: float = WAIT_S, what: str = "condition") -> None:
    """Poll ``pred`` until it holds; the timeout only turns a hang into a failure."""
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"{what} not reached within {timeout:.0f} s"
        time.sleep(0.01)


def blocked_in(thread: threading.Thread | None, *functions: str) -> bool:
    """True while ``thread`` is inside one of ``functions`` (e.g. a pause's ``wait_while_paused``): a thread
    blocked there cannot report anything, so what was seen so far is all there is until it is released."""
    frame = sys._current_frames().get(thread.ident) if thread is not None and thread.ident else None
    while frame is not None:
        if frame.f_code.co_name in functions:
            return True
        frame = frame.f_back
    return False
