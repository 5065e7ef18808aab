"""A notebook on another machine reaches the cluster through Ray Client (``ray://host:10001``): a fresh
driver process, configured only by ``$NERF_WIDGETS_RAY_ADDRESS``, trains on the cluster and gets its
metrics and checkpoint home. A process of its own because a Python process joins one cluster, one way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.jobs.cluster.local_cluster import ROOT, LocalCluster

DRIVER = """
import json, sys
from pathlib import Path
from nerf_widgets.engine.checkpoint import list_checkpoints
from nerf_widgets.jobs import shutdown_runners
from nerf_widgets.studio import Studio
from tests.jobs.cluster.ray_helpers import WAIT_S, posed_project

studio = Studio(Path(sys.argv[1]))
job = posed_project(studio, "client").start_training(max_steps=40, job_type="ray_fake_train")
row = job.wait(WAIT_S)
import ray
print(json.dumps({"state": row.state, "error": row.error, "executor": row.params["executor"],
                  "client": ray.util.client.ray.is_connected(), "steps": [p[0] for p in job.metrics().get("psnr", [])],
                  "checkpoints": [p.name for p in list_checkpoints(row.run_dir)], "pid": row.progress.get("worker_pid")}))
shutdown_runners()
studio.close()
"""


def test_a_driver_joins_through_ray_client_from_the_environment(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    env = {**os.environ, "NERF_WIDGETS_RAY_ADDRESS": ray_cluster.client_address,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "home")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["state"] == "succeeded", out["error"]
    assert out["executor"] == "ray" and out["client"] is True  # through the client server, not a direct join
    assert out["steps"] == list(range(1, 41))
    assert out["checkpoints"][-1] == "ckpt_00000040.pt"
    assert isinstance(out["pid"], int)
