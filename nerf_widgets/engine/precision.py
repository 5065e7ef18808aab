"""Mixed precision: which dtype the networks run in, and whether the loss needs scaling, per device and method.

The rule (``choose_precision``, a pure function of device type, compute capability and method):

- ``off``, or a GPU older than Volta (compute capability < 7.0) -> float32. Those GPUs have no tensor
  cores, and most Pascal parts (6.1) run float16 at 1/64 of the float32 rate.
- Ampere or newer (>= 8.0) -> bfloat16 autocast, no loss scaling: bfloat16 keeps float32's exponent range,
  so no gradient underflows. Both methods.
- Volta / Turing (7.x: V100, Colab's T4) -> float16 autocast with a ``torch.amp.GradScaler`` for
  ``vanilla``, float32 for ``fast``. Why the two differ:

  float16's smallest normal number is 6e-5 (subnormals to 6e-8). The photometric loss is a mean over
  ~10^4 ray channels and each sample's colour enters with its compositing weight, so per-sample
  gradients reaching the networks are ~1e-8..1e-4: unscaled, many of them flush to zero in a float16
  backward. A GradScaler multiplies the loss by S (2^16 at first), then divides the gradients of the
  *optimiser's parameters* by S and skips the step when any of them is inf/NaN.

  ``vanilla`` is all MLPs: every gradient is a parameter gradient the scaler sees, unscales and checks.
  ``fast`` is not: the density and feature grids get their gradients outside autograd's parameters,
  scattered by the grids' own backward (``engine.grid._Lookup``, and the numba kernels'
  ``composite_backward`` / ``scatter``) into buffers that ``DenseGrid.adam_step_`` applies directly.
  Under a scaler those buffers would hold S times the gradient; the scaler would not unscale them, and
  when it skips an overflowing step the grids would still take it with inf/NaN values (destroying the
  table). Adam is nearly scale-invariant, but S changes (halved on overflow, doubled every 2000 good
  steps), so the moments would mix scales even without an overflow. Making it safe needs the grids to
  unscale and check their buffers themselves; for a 1 x 64 colour MLP that is a small share of the step
  (the time is in marching and scattering), float16 would gain little. So ``fast`` stays float32 there.

- CPUs -> float32 unless ``bf16`` is asked for and the CPU computes bfloat16 natively (measured slower by
  default: lego, 5 min, 1982 steps in bfloat16 vs 2170 in float32; oneDNN builds a primitive per batch shape).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import ValidationError

__all__ = ["MODES", "Precision", "bf16_native", "check_precision", "choose_precision", "device_precision",
           "network_autocast"]

MODES = ("auto", "bf16", "off")
AMPERE, VOLTA = (8, 0), (7, 0)


@dataclass(frozen=True)
class Precision:
    """``dtype`` the networks' forwards autocast to (``float32`` = no autocast); ``scaler``: scale the loss."""

    dtype: str  # float32 | bfloat16 | float16
    scaler: bool
    reason: str

    def autocast(self, device_type: str) -> Any:
        """The context for network forwards (callers cast the outputs back to float32)."""
        import torch

        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=getattr(torch, self.dtype))


def check_precision(mode: Any) -> None:
    """Models call this on construction, so a bad ``mixed_precision`` option fails before training starts."""
    if mode not in MODES:
        raise ValidationError(f"mixed_precision must be auto, bf16 or off, not {mode!r}")


def choose_precision(device_type: str, capability: tuple[int, int] | None, method: str, mode: str = "auto",
                     cpu_bf16: bool = False) -> Precision:
    """The precision rule of this module's docstring. ``capability`` is the CUDA compute capability (None off
    CUDA); ``cpu_bf16`` whether the CPU multiplies bfloat16 natively."""
    check_precision(mode)
    if mode == "off":
        return Precision("float32", False, "mixed precision is off")
    if device_type == "cpu":
        if mode == "bf16" and cpu_bf16:
            return Precision("bfloat16", False, "bfloat16 asked for; this CPU computes it natively")
        return Precision("float32", False, "CPUs train faster in float32" if mode == "auto"
                         else "this CPU has no native bfloat16")
    if device_type != "cuda" or capability is None:
        return Precision("float32", False, f"no mixed precision on {device_type}")
    if capability >= AMPERE:
        return Precision("bfloat16", False, "native bfloat16 (Ampere or newer); float32's range, no loss scaling")
    if capability < VOLTA or mode == "bf16":
        return Precision("float32", False, "no tensor cores before Volta" if capability < VOLTA
                         else "bfloat16 would be emulated before Ampere (slower than float32)")
    if method == "fast":
        return Precision("float32", False, "fast's grid gradients bypass a loss scaler, so float16 is unsafe")
    return Precision("float16", True, "float16 tensor cores (Volta/Turing); the loss scaler keeps gradients")


@functools.cache
def device_precision(device: Any, method: str, mode: str = "auto") -> Precision:
    """``choose_precision`` for a ``torch.device`` of this machine (capability read once per device)."""
    import torch

    capability: tuple[int, int] | None = None
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        capability = (int(major), int(minor))
    return choose_precision(device.type, capability, method, mode, cpu_bf16=device.type == "cpu" and _cpu_bf16())


def network_autocast(device: Any, mode: str, method: str) -> Any:
    """Autocast context for ``method``'s network forwards on ``device``."""
    return device_precision(device, method, mode).autocast(device.type)


@functools.cache
def bf16_native(device: Any) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware (Ampere or newer GPUs; CPUs with AVX512-BF16 or AMX)."""
    import torch

    if device.type == "cuda":
        return tuple(torch.cuda.get_device_capability(device)) >= AMPERE
    return device.type == "cpu" and _cpu_bf16()


def _cpu_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
