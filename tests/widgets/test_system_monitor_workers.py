"""SystemMonitor with jobs on a Ray cluster: a sample that carries a ``node`` (a remote worker's, put on the
system bus by the runner's monitor) gets its own labelled line and leaves the kernel's gauges alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nerf_widgets.jobs import shutdown_runners
from nerf_widgets.jobs.runner import runner_for
from nerf_widgets.studio import Studio
from nerf_widgets.sysmetrics import SystemSampler
from nerf_widgets.widgets.system_monitor import SystemMonitor
from tests.waiting import wait_until


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    s = Studio(tmp_path / "home")
    yield s
    shutdown_runners()
    s.close()


def test_worker_samples_get_a_line_labelled_with_their_node(studio: Studio, tmp_path: Path) -> None:
    monitor = SystemMonitor(studio)
    kernel = SystemSampler(tmp_path).sample().to_dict()
    monitor.apply(kernel)
    cpu_bar = monitor.gauges["cpu"][0].value
    worker = dict(kernel, node="gpu-node-7", pid=4242, job_id="job_0123456789abcdef", cpu_percent=3.0,
                  process_cpu_percent=180.0, gpus=[{"index": 0, "name": "A100", "memory_used_bytes": 2, "memory_total_bytes":
                                                    8, "utilization_percent": 93.0, "temperature_c": 60.0,
                                                    "memory_percent": 25.0}])
    monitor.apply(worker)
    line = monitor.workers.value
    assert "Ray worker on <b>gpu-node-7</b> (pid 4242, job job_0123456789abcdef)" in line
    assert "180% of one core" in line and "GPU 0 93% busy 25% memory" in line
    assert monitor.gauges["cpu"][0].value == cpu_bar  # the kernel's gauges still show the kernel's machine
    monitor.apply(dict(worker, process_cpu_percent=95.0))
    assert monitor.workers.value.count("gpu-node-7") == 1 and "95% of one core" in monitor.workers.value
    other = dict(worker, node="cpu-node-2", pid=77, job_id="job_fedcba9876543210")
    monitor.apply(other)
    assert monitor.workers.value.count("Ray worker on") == 2
    # the runner's monitor says which remote jobs still run: the ended job's line goes, the other stays
    runner_for(studio.db, studio.home).system_bus.publish("workers", {"job_ids": ["job_fedcba9876543210"]})
    wait_until(lambda: "gpu-node-7" not in monitor.workers.value, what="the ended worker's line removed")
    assert "cpu-node-2" in monitor.workers.value
    monitor.close()
