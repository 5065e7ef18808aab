"""Cheap, side-effect-free system samples (well under a millisecond without a GPU).

``psutil.cpu_percent`` measures since the previous call, so one ``SystemSampler`` is kept per
monitor and asked at a steady interval.

GPUs: once this process has initialised CUDA (a job reserved or trained on a GPU), they are the ones
PyTorch can use (``core.devices.cuda_devices``, numbered as ``cuda:<n>``), with memory from
``torch.cuda.mem_get_info`` on GPUs this process allocates on, else from NVML. Sampling never imports
torch nor initialises CUDA itself (seconds of start-up; a CUDA context takes hundreds of MB of the GPU), so
before that only NVML's view is shown, in NVML's numbering. NVML (``nvidia-ml-py``, the
``nerf_widgets[gpu]`` extra) is optional: it adds utilisation and temperature, matched to PyTorch's devices
by GPU UUID because ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER`` renumber PyTorch's devices, not NVML's.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from nerf_widgets.core.devices import CudaDevice, cuda_devices

__all__ = ["GpuSample", "NvmlReading", "SystemSample", "SystemSampler", "combine_gpu_readings", "gpu_samples"]


@dataclass(frozen=True)
class GpuSample:
    index: int  # PyTorch's: the job device cuda:<index>
    name: str
    memory_used_bytes: int  # by every process on the GPU
    memory_total_bytes: int
    utilization_percent: float | None = None  # None without NVML
    temperature_c: float | None = None

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


@dataclass(frozen=True)
class NvmlReading:
    """One GPU as NVML reports it (physical numbering, so matched by ``uuid``)."""

    uuid: str
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization_percent: float
    temperature_c: float


def combine_gpu_readings(devices: list[CudaDevice], torch_free: dict[int, int],
                         nvml: list[NvmlReading]) -> list[GpuSample]:
    """One sample per PyTorch device: memory from ``torch_free`` (free bytes by index) or else NVML, utilisation
    and temperature from NVML; a device with neither memory source is left out (nothing true to show)."""
    by_uuid = {_uuid_key(r.uuid): r for r in nvml}
    out = []
    for d in devices:
        reading = by_uuid.get(_uuid_key(d.uuid)) if d.uuid else None
        if d.index in torch_free:
            used = d.total_memory_bytes - torch_free[d.index]
        elif reading is not None:
            used = reading.memory_used_bytes
        else:
            continue
        out.append(GpuSample(d.index, d.name, int(used), d.total_memory_bytes,
                             reading.utilization_percent if reading else None,
                             reading.temperature_c if reading else None))
    return out


def gpu_samples() -> list[GpuSample]:
    """PyTorch's GPUs once this process initialised CUDA, NVML's before (empty without either)."""
    torch = sys.modules.get("torch")
    nvml = _nvml_readings()
    # another thread may be importing torch right now: a partial module has no usable `cuda` yet
    is_initialized = getattr(getattr(torch, "cuda", None), "is_initialized", None)
    if torch is None or is_initialized is None or not is_initialized():
        return [GpuSample(i, r.name, r.memory_used_bytes, r.memory_total_bytes, r.utilization_percent,
                          r.temperature_c) for i, r in enumerate(nvml)]
    devices = cuda_devices()
    # only devices this process already allocated on: mem_get_info elsewhere would create a context there
    used_here = [d.index for d in devices if torch.cuda.memory_reserved(d.index) > 0]
    free = {i: int(torch.cuda.mem_get_info(i)[0]) for i in used_here}
    return combine_gpu_readings(devices, free, nvml)


def _uuid_key(uuid: str) -> str:
    u = uuid.strip().lower()
    return u[4:] if u.startswith("gpu-") else u


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


def _nvml_readings() -> list[NvmlReading]:
    nvml = _nvml()
    if nvml is None:
        return []
    out = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        mem = nvml.nvmlDeviceGetMemoryInfo(h)
        uuid, name = nvml.nvmlDeviceGetUUID(h), nvml.nvmlDeviceGetName(h)
        out.append(NvmlReading(
            uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
            name=name.decode() if isinstance(name, bytes) else str(name),
            memory_used_bytes=int(mem.used),
            memory_total_bytes=int(mem.total),
            utilization_percent=float(nvml.nvmlDeviceGetUtilizationRates(h).gpu),
            temperature_c=float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
        ))
    return out
