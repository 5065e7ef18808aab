"""A real capture in miniature for the region tests: a small object off the cameras' focus, inside a patterned
room (the background a contracted shell must hold), seen by a ring of cameras; opaque photos, no aabb."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from tests.engine.engine_scene import LIGHT, look_at

OBJECT = [((0.5, 0.3, 0.1), 0.3, (0.9, 0.25, 0.2)), ((0.75, 0.45, 0.35), 0.14, (0.2, 0.75, 0.3)),
          ((0.25, 0.15, 0.3), 0.12, (0.25, 0.3, 0.9))]
OBJECT_BOX = {"center": [0.5, 0.3, 0.15], "size": [0.8, 0.8, 0.7]}  # holds the three spheres
ROOM_RADIUS = 9.0


def _room_colour(p: np.ndarray) -> np.ndarray:
    """Smooth stripes on the room's wall, by direction from its centre."""
    d = p / np.linalg.norm(p, axis=-1, keepdims=True)
    az, el = np.arctan2(d[..., 1], d[..., 0]), np.arcsin(np.clip(d[..., 2], -1, 1))
    return np.stack([0.5 + 0.3 * np.sin(3 * az), 0.5 + 0.3 * np.cos(2 * el + az), 0.45 + 0.25 * np.sin(5 * el)], -1)


def trace(c2w: np.ndarray, size: int, focal: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB [size,size,3] in [0,1] and the object's mask [size,size] (bool)."""
    j, i = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    d = np.stack([(i + 0.5 - size / 2) / focal, -(j + 0.5 - size / 2) / focal, -np.ones_like(i, float)], -1)
    d = d @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = c2w[:3, 3]
    b = d @ o  # the room: the far root of |o + t d| = ROOM_RADIUS
    t_room = -b + np.sqrt(b * b - (o @ o - ROOM_RADIUS**2))
    rgb = _room_colour(o + d * t_room[..., None])
    best = np.full(d.shape[:2], np.inf)
    for centre, r, colour in OBJECT:
        oc = o - np.asarray(centre)
        bb = d @ oc
        disc = bb * bb - (oc @ oc - r * r)
        t = -bb - np.sqrt(np.maximum(disc, 0))
        hit = (disc > 0) & (t > 0) & (t < best)
        n = (o + d * t[..., None] - np.asarray(centre)) / r
        shade = 0.35 + 0.65 * np.clip(n @ LIGHT, 0, 1)
        rgb[hit] = (np.asarray(colour) * shade[..., None])[hit]
        best = np.where(hit, t, best)
    return rgb, np.isfinite(best)


def ring_poses(n: int, radius: float = 4.0) -> list[np.ndarray]:
    """Cameras on two heights around the origin (the object sits off it, as a real object rarely is centred)."""
    return [look_at(radius * np.array([math.cos(el) * math.cos(2 * math.pi * k / n + el),
                                       math.cos(el) * math.sin(2 * math.pi * k / n + el), math.sin(el)]))
            for k in range(n) for el in ((0.15, 0.6)[k % 2],)]


def make_room_scene(root: Path, n_views: int = 24, size: int = 64, fov: float = 0.7) -> Path:
    """``transforms.json`` + RGB images under ``root``; every 8th view is a test view (``data.load_dataset``)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    focal = 0.5 * size / math.tan(0.5 * fov)
    frames = []
    for k, pose in enumerate(ring_poses(n_views)):
        rgb, _ = trace(pose, size, focal)
        Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), "RGB").save(root / "images" / f"v_{k}.png")
        frames.append({"file_path": f"images/v_{k}.png", "transform_matrix": pose.tolist()})
    meta = {"fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size, "frames": frames}
    (root / "transforms.json").write_text(json.dumps(meta))
    return root
