from __future__ import annotations

import os
from pathlib import Path

import psutil

from nerf_widgets.sysmetrics import SystemSampler, gpu_samples


def test_sample_reports_this_process_and_disk(tmp_path: Path) -> None:
    sampler = SystemSampler(tmp_path / "not-yet-created")
    blob = bytearray(64 * 1024 * 1024)  # the RSS must include this
    s = sampler.sample()
    assert s.process_rss_bytes >= len(blob)
    assert abs(s.process_rss_bytes - psutil.Process(os.getpid()).memory_info().rss) < 16 * 1024 * 1024
    assert 0 < s.memory_available_bytes <= s.memory_total_bytes and 0 <= s.memory_percent <= 100
    assert 0 < s.disk_free_bytes <= s.disk_total_bytes
    assert s.disk_total_bytes == psutil.disk_usage(str(tmp_path)).total
    assert s.cpu_count == psutil.cpu_count()
    d = s.to_dict()
    assert d["gpus"] == [g.__dict__ | {"memory_percent": g.memory_percent} for g in s.gpus]
    del blob


def test_gpu_samples_empty_without_nvidia_driver() -> None:
    has_driver = Path("/proc/driver/nvidia").exists()
    assert (len(gpu_samples()) > 0) == has_driver
