"""Start and stop a real local Ray cluster for tests and benchmarks (``ray start --head`` in its own dirs).

It gets its own temporary dir and free ports, so it never meets another cluster on the machine, and is
stopped by the pids of its own processes (``ray stop`` would stop every Ray of this user).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import psutil

ROOT = Path(__file__).resolve().parents[3]


class ClusterStartError(RuntimeError):
    pass


class LocalCluster(NamedTuple):
    address: str  # host:port of the head (a driver on this machine joins it directly)
    client_address: str  # ray://host:port of its Ray Client server (how a remote notebook connects)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_ports(size: int = 400) -> tuple[int, int]:
    """A block of ports for this cluster's workers and drivers, free now and picked at random. Ray hands them
    out from 10002 up by default, so two clusters on one machine (a test run beside a developer's, or beside
    a benchmark) give the same port to two processes and Ray aborts the one that loses (``grpc_server.cc``
    "Failed to start the grpc server")."""
    blocks = [b for b in range(10_000, 32_000, size) if not 22_600 <= b < 24_000]  # 23000+: Ray Client sessions
    for base in random.sample(blocks, len(blocks)):
        if all(_free(p) for p in range(base, base + size)):
            return base, base + size - 1
    raise ClusterStartError("no free block of ports between 10000 and 32000 for the cluster's workers")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _processes(temp: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.Error, TypeError):
            continue
    return found


def _stop(temp: str) -> None:
    procs = _processes(temp)
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


@contextmanager
def local_cluster(cpus: int = 2, env: dict[str, str] | None = None) -> Iterator[LocalCluster]:
    """Yield the addresses of a fresh head node with ``cpus`` CPUs and no GPU; stopped on exit."""
    temp = tempfile.mkdtemp(prefix="nwray-", dir="/tmp")  # short: Ray's socket paths live under it
    port, client_port = free_port(), free_port()
    low, high = worker_ports()
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--num-cpus", str(cpus), "--num-gpus", "0",
           "--temp-dir", temp, "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard", "false",
           "--disable-usage-stats", "--ray-client-server-port", str(client_port),
           "--min-worker-port", str(low), "--max-worker-port", str(high),
           "--dashboard-agent-listen-port", str(free_port()), "--object-store-memory", str(200 * 2**20)]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                "RAY_agent_register_timeout_ms": "180000", **(env or {})}  # a busy machine starts agents slowly
    try:
        subprocess.run(cmd, check=True, env=full_env, timeout=400, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        _stop(temp)
        raise ClusterStartError(f"ray start failed:\n{err.stdout[-2000:]}\n{err.stderr[-2000:]}") from err
    try:
        yield LocalCluster(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}")
    finally:
        import ray

        ray.shutdown()
        _stop(temp)
        shutil.rmtree(temp, ignore_errors=True)
