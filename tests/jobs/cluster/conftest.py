"""A real local Ray cluster for the executor tests: started by the test command, stopped at its end.

``ray start --head`` with 2 CPUs, no GPU and its own temporary dir and ports, so it never meets another
cluster on the machine; it is stopped by the pids of its own processes (``ray stop`` would stop every
Ray of this user). Under ``CI=true`` a missing Ray fails the run instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]
CPUS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_processes(temp: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.Error, TypeError):
            continue
    return found


def _stop(temp: str) -> None:
    procs = _cluster_processes(temp)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Ray is not installed (pip install 'nerf_widgets[ray]'); CI runs the Ray tests.")
        pytest.skip("Ray is not installed (pip install 'nerf_widgets[ray]')")
    temp = tempfile.mkdtemp(prefix="nwray-", dir="/tmp")  # short: Ray's socket paths live under it
    port = _free_port()
    ray_bin = str(Path(sys.executable).with_name("ray"))
    cmd = [ray_bin, "start", "--head", "--num-cpus", str(CPUS), "--num-gpus", "0", "--temp-dir", temp,
           "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard", "false",
           "--disable-usage-stats", "--ray-client-server-port", str(_free_port()),
           "--dashboard-agent-listen-port", str(_free_port()), "--object-store-memory", str(200 * 2**20)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_agent_register_timeout_ms": "180000"}  # a busy 2-core machine starts the agents slowly
    try:
        subprocess.run(cmd, check=True, env=env, timeout=400, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        _stop(temp)
        pytest.fail(f"ray start failed:\n{err.stdout[-2000:]}\n{err.stderr[-2000:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        _stop(temp)
        time.sleep(0.5)
        shutil.rmtree(temp, ignore_errors=True)
