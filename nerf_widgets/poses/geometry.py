"""Pose geometry: COLMAP <-> OpenGL conversion, rotation checks, scene normalisation, Sim3 alignment.

Conventions: cameras are camera-to-world 4x4 matrices in the OpenGL convention (+X right, +Y up,
looking down -Z); COLMAP stores world-to-camera in the OpenCV convention (+X right, +Y down, +Z
forward). Normalised scenes have world up +Z (Blender's, and what the engine expects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CAMERA_RADIUS",
    "Normalization",
    "c2w_from_world_to_cam",
    "normalize_scene",
    "qvec_from_rotation",
    "rotation_error_deg",
    "rotation_from_qvec",
    "rotation_problem",
    "umeyama",
    "world_to_cam_from_c2w",
]

Array = NDArray[np.float64]
CAMERA_RADIUS = 4.0  # world units: the farthest camera sits this far from the scene centre (lego's is 4.03)
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def c2w_from_world_to_cam(rotation: Array, translation: Array) -> Array:
    """COLMAP ``cam_from_world`` (R [3,3], t [3], OpenCV) -> camera-to-world [4,4] in OpenGL."""
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = rotation, translation
    return np.asarray(np.linalg.inv(w2c) @ _FLIP_YZ, dtype=np.float64)


def world_to_cam_from_c2w(c2w: Array) -> tuple[Array, Array]:
    """Inverse of :func:`c2w_from_world_to_cam`: OpenGL c2w [4,4] -> (R [3,3], t [3]) OpenCV world-to-camera."""
    w2c = np.asarray(np.linalg.inv(np.asarray(c2w, dtype=np.float64) @ _FLIP_YZ), dtype=np.float64)
    return w2c[:3, :3], w2c[:3, 3]


def rotation_from_qvec(q: Array) -> Array:
    """Unit quaternion (w, x, y, z), COLMAP's order -> rotation matrix [3,3]."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def qvec_from_rotation(r: Array) -> Array:
    """Rotation matrix [3,3] -> unit quaternion (w, x, y, z) with w >= 0 (Shepperd's method, stable)."""
    m = np.asarray(r, dtype=np.float64)
    k = np.array([
        [m[0, 0] - m[1, 1] - m[2, 2], 0, 0, 0],
        [m[1, 0] + m[0, 1], m[1, 1] - m[0, 0] - m[2, 2], 0, 0],
        [m[2, 0] + m[0, 2], m[2, 1] + m[1, 2], m[2, 2] - m[0, 0] - m[1, 1], 0],
        [m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], m[0, 0] + m[1, 1] + m[2, 2]],
    ]) / 3.0
    vals, vecs = np.linalg.eigh(k)
    x, y, z, w = vecs[:, np.argmax(vals)]
    q = np.array([w, x, y, z])
    return q if w >= 0 else -q


def rotation_problem(r: Array, tol: float = 1e-3) -> str | None:
    """Return why ``r`` [3,3] is not a rotation (NaN, not orthonormal, reflection), or None if it is one."""
    r = np.asarray(r, dtype=np.float64)
    if r.shape != (3, 3):
        return f"rotation has shape {r.shape}, expected (3, 3)"
    if not np.all(np.isfinite(r)):
        return "rotation contains NaN or infinite values"
    dev = float(np.abs(r.T @ r - np.eye(3)).max())
    if dev > tol:
        return f"rotation is not orthonormal (max |R^T R - I| = {dev:.3g} > {tol:g})"
    if np.linalg.det(r) < 0:
        return "rotation is a reflection (det < 0)"
    return None


def rotation_error_deg(a: Array, b: Array) -> float:
    """Geodesic angle between two rotations [3,3], in degrees."""
    cos = (np.trace(np.asarray(a).T @ np.asarray(b)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def umeyama(src: Array, dst: Array) -> tuple[float, Array, Array]:
    """Least-squares similarity with ``dst ~= s * R @ src + t`` (Umeyama 1991); src, dst [N,3], N >= 3."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    var_s = (xs**2).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ sign) / var_s) if var_s > 0 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


@dataclass(frozen=True)
class Normalization:
    """The similarity applied to the raw reconstruction: ``x_new = scale * rotation @ (x - centre)``."""

    scale: float
    rotation: Array  # [3,3]
    centre: Array  # [3], in the input frame
    centring: str  # "focus" (cameras look at a common point) or "points" (forward-facing: sparse points' median)

    @property
    def matrix(self) -> Array:
        """The similarity as a 4x4 matrix acting on homogeneous points."""
        m = np.eye(4)
        m[:3, :3] = self.scale * self.rotation
        m[:3, 3] = -self.scale * self.rotation @ self.centre
        return m

    def apply_c2w(self, c2w: Array) -> Array:
        """Move camera-to-world matrices [N,4,4] into the normalised frame (rotation stays orthonormal)."""
        out = np.array(c2w, dtype=np.float64, copy=True)
        out[:, :3, :3] = self.rotation @ out[:, :3, :3]
        out[:, :3, 3] = self.scale * (out[:, :3, 3] - self.centre) @ self.rotation.T
        return out

    def apply_points(self, points: Array) -> Array:
        """Move points [M,3] into the normalised frame."""
        return self.scale * (np.asarray(points, dtype=np.float64) - self.centre) @ self.rotation.T

    def to_dict(self) -> dict[str, object]:
        return {"scale": self.scale, "rotation": self.rotation.tolist(), "centre": self.centre.tolist(),
                "centring": self.centring, "matrix": self.matrix.tolist(), "up": "+z", "camera_radius": CAMERA_RADIUS}


def _rotation_to_z(up: Array) -> Array:
    """Smallest rotation taking unit vector ``up`` to +Z (Rodrigues)."""
    z = np.array([0.0, 0.0, 1.0])
    v, c = np.cross(up, z), float(up @ z)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def _focus_point(origins: Array, dirs: Array) -> Array:
    """Point closest (least squares) to all optical axes; origins, dirs [N,3]."""
    eye = np.eye(3)[None]
    proj = eye - dirs[:, :, None] * dirs[:, None, :]
    return np.linalg.lstsq(proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0], rcond=None)[0]


def normalize_scene(c2w: Array, points: Array | None = None, radius: float = CAMERA_RADIUS) -> Normalization:
    """Centre, level and scale a scene given cameras [N,4,4] (OpenGL c2w) and optional sparse points [M,3].

    Up: the mean camera +Y axis becomes world +Z. Centre: the point the cameras look at when their
    viewing directions spread (object captures), else the sparse points' median (forward-facing).
    Scale: the farthest camera ends ``radius`` from the centre.
    """
    c2w = np.asarray(c2w, dtype=np.float64)
    up = c2w[:, :3, 1].mean(0)
    rot = _rotation_to_z(up / np.linalg.norm(up)) if np.linalg.norm(up) > 1e-6 else np.eye(3)
    origins, dirs = c2w[:, :3, 3], -c2w[:, :3, 2]
    spread = np.linalg.norm(dirs.mean(0))  # 1 = all parallel, small = looking inwards from all around
    if (spread > 0.9 or len(c2w) < 3) and points is not None and len(points) > 0:
        centre, how = np.median(np.asarray(points, dtype=np.float64), axis=0), "points"
    elif len(c2w) >= 2:
        centre, how = _focus_point(origins, dirs), "focus"
    else:
        centre, how = origins.mean(0), "cameras"
    far = float(np.linalg.norm(origins - centre, axis=1).max())
    scale = radius / far if far > 1e-12 else 1.0
    return Normalization(scale=scale, rotation=rot, centre=centre, centring=how)
