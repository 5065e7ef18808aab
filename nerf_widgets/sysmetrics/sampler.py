"""Cheap, side-effect-free system samples (well under a millisecond without a GPU).

``psutil.cpu_percent`` measures since the previous call, so one ``SystemSampler`` is kept per
monitor and asked at a steady interval. NVML (``nvidia-ml-py``) is initialised once, lazily; on a
machine without an NVIDIA driver ``gpu_samples()`` is simply empty.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["GpuSample", "SystemSample", "SystemSampler", "gpu_samples"]


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization_percent: float
    temperature_c: float

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_used_bytes / self.memory_total_bytes if self.memory_total_bytes else 0.0


@dataclass(frozen=True)
class SystemSample:
    time: float  # unix seconds
    process_cpu_percent: float  # of one core: 200 = two cores busy
    process_rss_bytes: int
    cpu_percent: float  # whole machine, 0..100
    cpu_count: int
    memory_total_bytes: int
    memory_available_bytes: int
    memory_percent: float  # machine memory in use, 0..100
    disk_free_bytes: int  # on the file system holding the studio home
    disk_total_bytes: int
    gpus: list[GpuSample] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpus"] = [dict(asdict(g), memory_percent=g.memory_percent) for g in self.gpus]
        return data


class SystemSampler:
    """Samples the machine; ``home`` is the folder whose disk is watched."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = Path(home) if home is not None else Path.home()
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        psutil.cpu_percent(None)

    def sample(self) -> SystemSample:
        mem = psutil.virtual_memory()
        disk = psutil.disk_usage(str(_existing(self.home)))
        with self._proc.oneshot():
            proc_cpu = self._proc.cpu_percent(None)
            rss = self._proc.memory_info().rss
        return SystemSample(
            time=time.time(),
            process_cpu_percent=proc_cpu,
            process_rss_bytes=int(rss),
            cpu_percent=psutil.cpu_percent(None),
            cpu_count=psutil.cpu_count() or 1,
            memory_total_bytes=int(mem.total),
            memory_available_bytes=int(mem.available),
            memory_percent=float(mem.percent),
            disk_free_bytes=int(disk.free),
            disk_total_bytes=int(disk.total),
            gpus=gpu_samples(),
        )


def _existing(path: Path) -> Path:
    """The nearest existing ancestor (the home may not exist yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


_nvml_lock = threading.Lock()
_nvml_state: dict[str, Any] = {"ready": None}


def _nvml() -> Any | None:
    """The initialised ``pynvml`` module, or None when there is no driver / no package."""
    with _nvml_lock:
        if _nvml_state["ready"] is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                _nvml_state["ready"] = pynvml
            except Exception:  # no package, no driver, no device: all mean "no GPU to watch"
                _nvml_state["ready"] = False
        return _nvml_state["ready"] or None


def gpu_samples() -> list[GpuSample]:
    nvml = _nvml()
    if nvml is None:
        return []
    out = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        mem = nvml.nvmlDeviceGetMemoryInfo(h)
        name = nvml.nvmlDeviceGetName(h)
        out.append(GpuSample(
            index=i,
            name=name.decode() if isinstance(name, bytes) else str(name),
            memory_used_bytes=int(mem.used),
            memory_total_bytes=int(mem.total),
            utilization_percent=float(nvml.nvmlDeviceGetUtilizationRates(h).gpu),
            temperature_c=float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
        ))
    return out
