"""``Region``: the box around the object of a capture (region of interest), shared by poses, export and training.

It lives in ``core`` because three compute packages read it and they may not import each other. A region is
an oriented box in the normalised world (Z up): ``center`` [3], ``size`` [3] (full edge lengths along the box's
own axes), ``rotation`` [3,3] (columns = the box axes in world coordinates; its third column is the box's up,
the floor normal when a floor was found). The floor is the box's bottom face; ``floor_cut`` says whether an
export leaves the floor out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nerf_widgets.core.errors import ValidationError

__all__ = ["Region", "yaw_rotation"]

Array = NDArray[np.float64]
FLOOR_SLAB = 0.03  # share of the box height above the floor left out when the floor is cut


def yaw_rotation(degrees: float, up: Array | None = None) -> Array:
    """Rotation whose third column is ``up`` (default +Z), turned ``degrees`` about it."""
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, np.float64) / np.linalg.norm(up)
    seed = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = seed - up * float(seed @ up)
    x /= np.linalg.norm(x)
    y = np.cross(up, x)
    a = np.radians(degrees)
    x, y = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
    return np.stack([x, y, up], axis=1)


def _vector(data: Mapping[str, Any], key: str, shape: tuple[int, ...]) -> Array:
    if key not in data:
        raise ValidationError(f"region: {key!r} is missing", field=key)
    try:
        arr = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"region: {key} must be numbers, got {data[key]!r}", field=key) from err
    if arr.shape != shape:
        raise ValidationError(f"region: {key} must have shape {shape}, got {arr.shape}", field=key)
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"region: {key} contains NaN or infinite values ({arr.tolist()})", field=key)
    return arr


def _rotation(data: Mapping[str, Any]) -> Array:
    """``rotation`` as a 3x3 matrix, a (w, x, y, z) quaternion or ``yaw_deg`` about +Z (default identity)."""
    if "rotation" not in data or data["rotation"] is None:
        return yaw_rotation(float(data.get("yaw_deg", 0.0)))
    raw = np.asarray(data["rotation"], dtype=np.float64)
    if raw.shape == (4,):
        if not np.all(np.isfinite(raw)) or np.linalg.norm(raw) < 1e-9:
            raise ValidationError(f"region: rotation quaternion is not usable ({raw.tolist()})", field="rotation")
        w, x, y, z = raw / np.linalg.norm(raw)
        raw = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    rot = _vector({"rotation": raw}, "rotation", (3, 3))
    dev = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if dev > 1e-3 or np.linalg.det(rot) < 0:
        raise ValidationError("region: rotation must be a proper rotation matrix (orthonormal, det +1)",
                              field="rotation")
    return rot


@dataclass(frozen=True)
class Region:
    """An oriented box, validated on construction through :meth:`from_dict` (never build one by hand)."""

    center: Array
    size: Array
    rotation: Array
    floor_cut: bool = False
    floor: tuple[float, float, float, float] | None = None  # plane n.x + d = 0 (unit n up), when one was found
    source: str = "set"  # "proposed", "set", "import"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Region) -> Region:
        """Validate and build; raises ``ValidationError`` naming the bad field (nothing is stored then)."""
        if isinstance(data, Region):
            return data
        if not isinstance(data, Mapping):
            raise ValidationError(f"region must be a mapping with center, size and rotation, got {type(data).__name__}")
        center, size = _vector(data, "center", (3,)), _vector(data, "size", (3,))
        if np.any(size <= 0):
            raise ValidationError(f"region: every size must be positive, got {size.tolist()}", field="size")
        floor = data.get("floor")
        if floor is not None:
            floor = tuple(float(v) for v in _vector({"floor": floor}, "floor", (4,)))
        return cls(center, size, _rotation(data), bool(data.get("floor_cut", False)), floor,
                   str(data.get("source", "set")))

    def to_dict(self) -> dict[str, Any]:
        return {"center": self.center.tolist(), "size": self.size.tolist(), "rotation": self.rotation.tolist(),
                "yaw_deg": self.yaw_deg, "floor_cut": self.floor_cut,
                "floor": list(self.floor) if self.floor is not None else None, "source": self.source}

    @property
    def yaw_deg(self) -> float:
        """Turn of the box's first axis about world +Z, in degrees (what a slider shows)."""
        return float(np.degrees(np.arctan2(self.rotation[1, 0], self.rotation[0, 0])))

    def to_local(self, points: Array) -> Array:
        """World points [N,3] -> box coordinates (origin at the centre, axes along the box)."""
        return (np.asarray(points, np.float64) - self.center) @ self.rotation

    def contains(self, points: Array, *, cut_floor: bool = False) -> NDArray[np.bool_]:
        """[N] bool: inside the box (and above the floor slab when ``cut_floor``)."""
        local = self.to_local(points)
        half = 0.5 * self.size
        inside = np.all(np.abs(local) <= half, axis=1)
        if cut_floor:
            inside &= local[:, 2] >= -half[2] + FLOOR_SLAB * self.size[2]
        return inside

    def corners(self) -> Array:
        """The 8 corners [8,3] in world coordinates."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
        return self.center + (signs * 0.5 * self.size) @ self.rotation.T

    def aabb(self) -> Array:
        """The axis-aligned box [2,3] around the region (world axes)."""
        c = self.corners()
        return np.stack([c.min(0), c.max(0)])

    def placement(self) -> tuple[Array, Array]:
        """(R, t) with ``x_placed = x @ R + t``: the box's up becomes +Z and its floor sits at z = 0."""
        return self.rotation, np.array([0.0, 0.0, 0.5 * self.size[2]])

    def place(self, points: Array) -> Array:
        """World points [N,3] -> placed coordinates (floor at height 0, up +Z, centred above the origin)."""
        rot, shift = self.placement()
        return (np.asarray(points, np.float64) - self.center) @ rot + shift
