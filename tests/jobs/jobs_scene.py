"""A tiny posed scene for training tests: one shaded sphere ray-traced into RGBA views + transforms.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image


def _c2w(eye: np.ndarray) -> np.ndarray:
    """OpenGL camera-to-world looking at the origin, world up +Z."""
    back = eye / np.linalg.norm(eye)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def _trace(c2w: np.ndarray, size: int, focal: float) -> np.ndarray:
    j, i = np.mgrid[0:size, 0:size] + 0.5
    dirs = np.stack([(i - size / 2) / focal, -(j - size / 2) / focal, -np.ones_like(i)], -1) @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    o = c2w[:3, 3]
    b = dirs @ o
    disc = b * b - (o @ o - 0.8**2)
    hit = disc > 0
    t = -b - np.sqrt(np.where(hit, disc, 0))
    normal = o + t[..., None] * dirs
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    shade = 0.3 + 0.7 * np.clip(normal @ np.array([0.4, 0.3, 0.87]), 0, 1)
    rgb = shade[..., None] * np.array([0.9, 0.4, 0.2]) + 0.1 * (normal[..., 2:] > 0)
    return np.concatenate([np.clip(rgb, 0, 1) * hit[..., None], hit[..., None].astype(float)], -1)


def make_scene(root: Path, n_views: int = 8, size: int = 32) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    focal = 0.5 * size / math.tan(0.35)
    frames = []
    for k in range(n_views):
        az, el = 2 * math.pi * k / n_views, 0.3 + 0.4 * (k % 2)
        c2w = _c2w(3.5 * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]))
        Image.fromarray((_trace(c2w, size, focal) * 255 + 0.5).astype(np.uint8), "RGBA").save(root / f"images/r_{k}.png")
        frames.append({"file_path": f"./images/r_{k}.png", "transform_matrix": c2w.tolist()})
    meta = {"fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size,
            "aabb": [[-1.2, -1.2, -1.2], [1.2, 1.2, 1.2]], "frames": frames}
    (root / "transforms.json").write_text(json.dumps(meta))
    return root
