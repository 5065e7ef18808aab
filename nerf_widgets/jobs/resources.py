"""Resource check: a job declares its device and memory; it waits while they are not free.

By default each device runs one job at a time (``slots_per_device``): two trainings on one CPU or
GPU only slow each other down and double the memory. Memory is checked against what the device has
available now (``core.devices.device_memory``: ``psutil`` for the CPU, ``torch.cuda.mem_get_info`` for a GPU).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from nerf_widgets.core.devices import device_memory
from nerf_widgets.core.errors import ResourceUnavailableError, ValidationError

__all__ = ["ResourcePool", "ResourceRequest", "device_memory"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class ResourceRequest:
    device: str = "cpu"  # "cpu" or "cuda:<index>"
    memory_bytes: int = 0  # needed free on that device when the job starts
    exclusive: bool = True  # takes one of the device's slots (training); False = light work (no slot)

    def __post_init__(self) -> None:
        if self.device != "cpu" and not (self.device.startswith("cuda:") and self.device[5:].isdigit()):
            raise ValidationError(f"Unknown device {self.device!r}; use 'cpu' or 'cuda:<index>'.")
        if self.memory_bytes < 0:
            raise ValidationError("memory_bytes must be >= 0")


class ResourcePool:
    """Slots per device, held by job id; ``try_acquire`` says why not when it refuses."""

    def __init__(self, slots_per_device: int = 1,
                 memory_probe: Callable[[str], tuple[int, int]] = device_memory) -> None:
        self.slots_per_device = slots_per_device
        self._probe = memory_probe
        self._held: dict[str, ResourceRequest] = {}
        self._lock = threading.Lock()

    def check_possible(self, req: ResourceRequest) -> None:
        """Raise at once for a request no amount of waiting can satisfy."""
        _, total = self._probe(req.device)
        if req.memory_bytes > total:
            raise ResourceUnavailableError(
                f"The job needs {req.memory_bytes / MiB:.0f} MiB on {req.device}, which has only "
                f"{total / MiB:.0f} MiB in total; choose a smaller preset.", device=req.device)

    def try_acquire(self, job_id: str, req: ResourceRequest) -> str | None:
        """None when acquired, else a sentence saying what the job waits for."""
        with self._lock:
            if req.exclusive:
                users = [j for j, r in self._held.items() if r.device == req.device and r.exclusive]
                if len(users) >= self.slots_per_device:
                    return f"{req.device} is busy with job {', '.join(users)}"
            available, _ = self._probe(req.device)
            if req.memory_bytes > available:
                return f"{req.device} has {available / MiB:.0f} MiB free, the job needs {req.memory_bytes / MiB:.0f} MiB"
            self._held[job_id] = req
            return None

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.pop(job_id, None)

    def holders(self) -> dict[str, ResourceRequest]:
        with self._lock:
            return dict(self._held)
