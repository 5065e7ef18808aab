from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from nerf_widgets.core.devices import CudaDevice, cuda_devices
from nerf_widgets.sysmetrics import GpuSample, SystemSampler, gpu_samples
from nerf_widgets.sysmetrics.sampler import NvmlReading, combine_gpu_readings

GiB = 1024**3


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


def test_gpu_samples_follow_pytorch_once_cuda_is_initialised() -> None:
    import torch

    if torch.cuda.is_initialized():
        assert [g.index for g in gpu_samples()] == [d.index for d in cuda_devices()]
    elif not Path("/proc/driver/nvidia").exists():
        assert gpu_samples() == []  # no CUDA in use here and no driver for NVML


def test_sampling_never_imports_torch() -> None:
    script = "import sys; from nerf_widgets.sysmetrics import SystemSampler; SystemSampler().sample(); " \
             "print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


T4 = CudaDevice(0, "Tesla T4", (7, 5), 15 * GiB, "GPU-bbbb")  # CUDA_VISIBLE_DEVICES=1: NVML's second GPU
A100 = CudaDevice(1, "A100", (8, 0), 40 * GiB, "ffff")  # spelt without the prefix
NVML = [NvmlReading("GPU-aaaa", "RTX 4090", 1 * GiB, 24 * GiB, 5.0, 40.0),
        NvmlReading("gpu-BBBB", "Tesla T4", 3 * GiB, 15 * GiB, 97.0, 71.0)]


def test_nvml_readings_join_pytorchs_devices_by_uuid() -> None:
    got = combine_gpu_readings([T4], {}, NVML)
    assert got == [GpuSample(0, "Tesla T4", 3 * GiB, 15 * GiB, 97.0, 71.0)]  # not NVML's device 0
    assert got[0].memory_percent == 20.0


def test_torch_memory_wins_and_nvml_only_adds_utilisation_and_temperature() -> None:
    got = combine_gpu_readings([T4], {0: 11 * GiB}, NVML)
    assert got == [GpuSample(0, "Tesla T4", 4 * GiB, 15 * GiB, 97.0, 71.0)]


def test_without_nvml_a_gpu_shows_torch_memory_and_no_utilisation() -> None:
    got = combine_gpu_readings([T4, A100], {1: 30 * GiB}, [])
    assert got == [GpuSample(1, "A100", 10 * GiB, 40 * GiB, None, None)]  # T4: no memory source, left out
    sample = SystemSampler().sample()
    d = dataclasses.replace(sample, gpus=got).to_dict()
    assert d["gpus"] == [{"index": 1, "name": "A100", "memory_used_bytes": 10 * GiB, "memory_total_bytes": 40 * GiB,
                          "utilization_percent": None, "temperature_c": None, "memory_percent": 25.0}]


def test_gpu_samples_while_another_thread_is_still_importing_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A monitor tick can land while a job thread imports torch: the half-made module has no `cuda` yet."""
    import types

    from nerf_widgets.sysmetrics.sampler import gpu_samples

    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    assert isinstance(gpu_samples(), list)
