"""Which compute device a job uses: one rule shared by the engine (trains there) and jobs (reserve it).

Detection and memory come from ``torch.cuda`` (``is_available``, ``device_count``, ``mem_get_info``,
``get_device_properties``): it is what the engine will run on, so a GPU that NVML lists but this
PyTorch cannot use (a CPU-only build, ``CUDA_VISIBLE_DEVICES``) is never reserved. NVML is optional
and only adds utilisation and temperature (``sysmetrics``). torch is imported lazily.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psutil

from nerf_widgets.core.errors import ResourceUnavailableError, ValidationError

__all__ = ["CudaDevice", "choose_device", "cuda_devices", "device_memory", "no_cuda_reason", "normalize_device",
           "pick_device"]


@dataclass(frozen=True)
class CudaDevice:
    """What PyTorch says about one visible GPU (no CUDA context is created to learn it)."""

    index: int
    name: str
    capability: tuple[int, int]  # (major, minor): 7.5 = Turing (T4), 8.0+ = Ampere and newer
    total_memory_bytes: int
    uuid: str  # "GPU-..." as NVML spells it, to match NVML readings to PyTorch's (renumbered) index


def normalize_device(requested: str | None) -> str:
    """``None``/``auto`` -> ``auto``; ``cuda`` -> ``cuda:0``; ``cpu`` and ``cuda:<n>`` as given; else refused."""
    value = "auto" if requested is None else str(requested).strip().lower()
    if value == "cuda":
        return "cuda:0"
    if value in ("auto", "cpu") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise ValidationError(f"Unknown device {requested!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'.")


def choose_device(requested: str | None, cuda_count: int, why_no_cuda: str = "") -> str:
    """The device a request runs on, given how many CUDA devices PyTorch sees (a pure rule, so both callers
    agree): ``auto`` -> ``cuda:0`` when there is one, else ``cpu``; a CUDA request that cannot be met is
    refused with what is missing."""
    device = normalize_device(requested)
    if device == "auto":
        return "cuda:0" if cuda_count > 0 else "cpu"
    if device == "cpu":
        return device
    index = int(device[5:])
    if cuda_count == 0:
        raise ResourceUnavailableError(
            f"No CUDA device is visible{': ' + why_no_cuda if why_no_cuda else ''}. Train with device='cpu', "
            "or 'auto' (a GPU when one is visible, else the CPU).", device=device)
    if index >= cuda_count:
        raise ResourceUnavailableError(
            f"{device} is not visible: PyTorch sees {cuda_count} CUDA device(s), cuda:0..cuda:{cuda_count - 1}.",
            device=device)
    return device


def pick_device(requested: str | None) -> str:
    """``choose_device`` on this machine (imports torch unless the CPU was asked for)."""
    if normalize_device(requested) == "cpu":
        return "cpu"
    count = _cuda_count()
    return choose_device(requested, count, "" if count else no_cuda_reason())


def no_cuda_reason() -> str:
    """Why PyTorch sees no GPU here, in words a person can act on."""
    import torch

    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return f"this PyTorch ({torch.__version__}) is a CPU-only build"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    return f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) finds no NVIDIA driver or GPU"


def cuda_devices() -> list[CudaDevice]:
    """The GPUs this PyTorch can use, in its numbering (empty on a CPU-only machine or build)."""
    if _cuda_count() == 0:
        return []
    import torch

    out = []
    for i in range(torch.cuda.device_count()):
        p: Any = torch.cuda.get_device_properties(i)
        uuid = str(getattr(p, "uuid", ""))
        out.append(CudaDevice(i, str(p.name), (int(p.major), int(p.minor)), int(p.total_memory),
                              uuid if not uuid or uuid.startswith("GPU-") else "GPU-" + uuid))
    return out


def device_memory(device: str) -> tuple[int, int]:
    """``(available, total)`` bytes on ``cpu`` (psutil) or ``cuda:<n>`` (``torch.cuda.mem_get_info``, which
    counts every process on that GPU; the caller is about to use the device, so its context is no waste)."""
    device = pick_device(device)
    if device == "cpu":
        vm = psutil.virtual_memory()
        return int(vm.available), int(vm.total)
    import torch

    free, total = torch.cuda.mem_get_info(int(device[5:]))
    return int(free), int(total)


def _cuda_count() -> int:
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
