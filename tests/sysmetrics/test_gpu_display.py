"""The system monitor's GPU line with and without NVML (utilisation and temperature come only from NVML)."""

from __future__ import annotations

import dataclasses

from nerf_widgets.sysmetrics import GpuSample, SystemSampler

GiB = 1024**3


def test_gpu_line_shows_memory_and_nvml_fields_only_when_present(studio: object) -> None:
    from nerf_widgets.widgets.system_monitor import SystemMonitor

    monitor = SystemMonitor(studio)
    try:
        gpus = [GpuSample(0, "Tesla T4", 3 * GiB, 15 * GiB, 97.0, 71.0), GpuSample(1, "A100", 10 * GiB, 40 * GiB)]
        monitor.apply(dataclasses.replace(SystemSampler().sample(), gpus=gpus).to_dict())
        assert monitor.gpu.value == "GPU 0 Tesla T4: 20% memory, 97% busy, 71 °C<br>GPU 1 A100: 25% memory"
    finally:
        monitor.close()
