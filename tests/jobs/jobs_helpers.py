"""Plain job functions for runner tests: the runner must not care what a job computes."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from nerf_widgets.core.ids import new_id
from nerf_widgets.jobs import JobContext, JobSpec, ResourceRequest, register_job_type
from nerf_widgets.store import projects as project_store
from nerf_widgets.store.db import Database
from nerf_widgets.store.jobs import JobRow
from tests.waiting import blocked_in, wait_until  # noqa: F401 - re-exported for the job tests


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

