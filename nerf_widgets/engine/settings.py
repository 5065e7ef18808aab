"""Typed model settings, one dataclass per method: ``TrainConfig.model`` (a JSON dict) is read through them.

Why: a dict accepted any key, so a typo (``res_shedule``) trained silently with the defaults. ``from_options``
refuses unknown keys with the list of known ones and checks each value's type before a run starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from nerf_widgets.core.errors import ValidationError

__all__ = ["FastSettings", "VanillaSettings", "settings_for"]

S = TypeVar("S", bound="_Settings")


class _Settings:
    """Shared parsing: JSON dict -> frozen dataclass, unknown keys and wrong types refused."""

    @classmethod
    def from_options(cls: type[S], options: dict[str, Any] | None, method: str) -> S:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(options or {}) - set(fields))
        if unknown:
            raise ValidationError(f"unknown {method} model settings: {', '.join(unknown)}; "
                                  f"known: {', '.join(sorted(fields))}")
        values = {k: _coerce(method, k, v, getattr(cls, k)) for k, v in (options or {}).items()}
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    """``value`` in the default's type (JSON gives lists for tuples and ints for floats)."""
    bad = ValidationError(f"{method} model setting {key} must be like {default!r}, not {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if isinstance(default, int) and value != int(value):
            raise bad
        return type(default)(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(default, tuple):  # the resolution schedule: [[step, res], ...], steps increasing from 0
        try:
            pairs = tuple((int(s), int(r)) for s, r in value)
        except (TypeError, ValueError):
            raise bad from None
        if not pairs or pairs[0][0] != 0 or any(r < 4 for _, r in pairs) or \
                any(b[0] <= a[0] for a, b in zip(pairs, pairs[1:], strict=False)):
            raise bad
        return pairs
    return value


@dataclass(frozen=True)
class FastSettings(_Settings):
    """``fast``: dense grids + tiny MLP (see ``engine.fast``)."""

    res_schedule: tuple[tuple[int, int], ...] = ((0, 64), (300, 96), (800, 128), (1600, 160), (4500, 200))
    # real captures make 2-4x fewer steps a minute than lego, and the views' box holds their detail: finer sooner;
    # 240 from step 2500 (~5 min on 2 cores): fern 25.21 -> 25.44 dB at 10 min, 25.26 -> 25.52 at 15
    unbounded_res_schedule: tuple[tuple[int, int], ...] = ((0, 96), (150, 128), (400, 160), (900, 200), (2500, 240))
    features: int = 12
    hidden: int = 64
    layers: int = 1
    step_ratio: float = 0.5  # fine marching step in voxels (inside the unit ball for unbounded scenes)
    coarse_k: int = 8  # fine steps per coarse occupancy interval
    occ_every: int = 16
    occ_alpha: float = 5e-3  # a cell is occupied when one step through it would absorb more than this
    color_thresh: float = 1e-4  # samples with a smaller weight get no colour evaluation
    alpha_init: float = 1e-2
    far: float = 1e3
    t_lin: float = 2.0  # unbounded: steps grow with t^2 beyond this depth (model units; cameras sit ~1 from the centre)
    proposal_samples: int = 48  # unbounded, CPU: samples per ray placed by a coarse density pass (0: march all)
    proposal_k: int = 2  # fine steps per interval of that coarse pass (2 = one voxel)
    proposal_blend: float = 0.05  # share of the samples spread evenly (in disparity) along the ray
    stop_trans: float = 1e-4  # fused CPU path: a ray ends once its transmittance is below this (instant-ngp)
    mixed_precision: str = "auto"  # colour MLP in bfloat16: auto (CUDA) | bf16 | off (config.autocast_bf16)
    fit_box: bool = True  # bounded: carving shrinks the box to the visual hull; unbounded: to what the views see
    forward_facing: str = "auto"  # unbounded: perspective grid (NDC) when all views look one way: auto | off
    perspective_depth: float = 0.5  # perspective grid: depth corners per schedule step R (the rest go across)
    appearance: str = "auto"  # per-view colour transform (exposure, white balance): auto (unbounded) | on | off
    distortion: float = 0.01  # unbounded: weight of mip-NeRF 360's distortion loss (against floaters)
    appearance_reg: float = 1e-3  # pulls each view's transform toward identity, the appearance test views get
    pose_refine: bool = False  # learn a rotation + translation per training view (slower on a CPU: PyTorch path)
    pose_lr: float = 5e-4  # Adam step of the pose corrections (radians / model units), decayed with the rest
    pose_reg: float = 1e-2  # pulls each correction toward zero
    pose_share: float = 0.125  # CPU: share of a batch's rays that carry the pose gradients (PyTorch path)


@dataclass(frozen=True)
class VanillaSettings(_Settings):
    """``vanilla``: the original NeRF MLPs (see ``engine.vanilla``)."""

    n_coarse: int = 64
    n_fine: int = 128
    pos_freqs: int = 10
    dir_freqs: int = 4
    width: int = 256
    depth: int = 8
    skip: int = 4
    far: float = 1e3
    chunk: int = 32768
    mixed_precision: str = "auto"  # MLPs in bfloat16: auto (CUDA) | bf16 | off


def settings_for(method: str, options: dict[str, Any] | None) -> FastSettings | VanillaSettings:
    """Settings of ``method`` from a config's ``model`` dict (raises ``ValidationError`` on bad keys)."""
    if method == "fast":
        return FastSettings.from_options(options, method)
    if method == "vanilla":
        return VanillaSettings.from_options(options, method)
    raise ValidationError(f"unknown method {method!r}")
