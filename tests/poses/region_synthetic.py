"""A synthetic object capture for region tests: an object on a floor, a ring of cameras, background clutter.

Everything is made here from a seed (no shipped data). The world is the normalised frame (+Z up, the
cameras' focus at the origin); ``tilt_deg`` leans the floor (and the object on it) away from the cameras' up
so the floor fit has something to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tests.poses.poses_synthetic import look_at

Array = NDArray[np.float64]
FLOOR_Z = -0.5
OBJECT_HALF = np.array([0.45, 0.3, 0.4])  # the object: a box standing on the floor, centred over the origin


@dataclass
class Capture:
    c2w: Array  # [N,4,4]
    points: Array  # [M,3] object + floor + clutter
    object_points: Array  # the object's own points (in the world)
    clutter: Array  # wall and far points (in the world)
    floor_normal: Array  # [3]
    lean: Array  # [3,3] the rotation applied to floor and object


def _rotation_x(deg: float) -> Array:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def make_capture(n_cameras: int = 24, tilt_deg: float = 0.0, seed: int = 0) -> Capture:
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, n_cameras, endpoint=False)
    heights = np.where(np.arange(n_cameras) % 2 == 0, 0.8, 1.8)  # two heights, as people are told to walk
    eyes = np.stack([3.8 * np.cos(angles), 3.8 * np.sin(angles), heights], 1)
    c2w = np.stack([look_at(e, np.zeros(3)) for e in eyes])
    # the object: points on the faces of a box standing on the floor
    u = rng.uniform(-1, 1, (3000, 3))
    face = rng.integers(0, 3, 3000)
    u[np.arange(3000), face] = np.sign(u[np.arange(3000), face])
    obj = u * OBJECT_HALF + np.array([0.0, 0.0, FLOOR_Z + OBJECT_HALF[2]])
    obj = obj[obj[:, 2] > FLOOR_Z + 1e-3]
    # the floor: a textured disc around the object (more points near it, as SfM finds them)
    r, t = 3.0 * np.sqrt(rng.uniform(0, 1, 2500)), rng.uniform(0, 2 * np.pi, 2500)
    floor = np.stack([r * np.cos(t), r * np.sin(t), np.full(2500, FLOOR_Z)], 1)
    floor += rng.normal(0, 0.003, floor.shape)
    lean = _rotation_x(tilt_deg)
    obj, floor = obj @ lean.T, floor @ lean.T
    # clutter: walls of the room around the cameras, a cupboard in a corner, a few strays
    wt, wz = rng.uniform(0, 2 * np.pi, 2000), rng.uniform(FLOOR_Z, 2.5, 2000)
    walls = np.stack([7.0 * np.cos(wt), 7.0 * np.sin(wt), wz], 1)
    cupboard = rng.uniform([-5.0, 3.0, FLOOR_Z], [-4.0, 4.5, 1.5], (500, 3))
    strays = rng.uniform(-10, 10, (40, 3))
    clutter = np.concatenate([walls, cupboard, strays])
    points = np.concatenate([obj, floor, clutter])
    return Capture(c2w, points, obj, clutter, lean @ np.array([0.0, 0.0, 1.0]), lean)
