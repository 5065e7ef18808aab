"""A tiny analytic scene for engine tests: coloured spheres ray-traced into RGBA views + transforms.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

SPHERES = [((0.0, 0.0, 0.0), 0.6, (0.9, 0.2, 0.2)), ((0.7, 0.3, 0.2), 0.35, (0.2, 0.8, 0.3)),
           ((-0.5, -0.5, 0.4), 0.4, (0.2, 0.3, 0.9))]
LIGHT = np.array([0.4, 0.3, 0.85]) / np.linalg.norm([0.4, 0.3, 0.85])


def look_at(eye: np.ndarray) -> np.ndarray:
    """OpenGL camera-to-world looking at the origin (-Z forward), world +Z up."""
    target, up = np.zeros(3), np.array([0.0, 0.0, 1.0])
    back = eye - target
    back = back / np.linalg.norm(back)
    right = np.cross(up, back)
    right = right / np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def orbit_poses(n: int, radius: float = 4.0, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    poses = []
    for i in range(n):
        az = 2 * math.pi * i / n
        el = rng.uniform(-0.3, 1.0)
        eye = radius * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        poses.append(look_at(eye))
    return poses


def trace(c2w: np.ndarray, size: int, focal: float) -> np.ndarray:
    """RGBA float image [size,size,4]: nearest sphere hit, Lambert + ambient shading, alpha 0 elsewhere."""
    j, i = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    d = np.stack([(i + 0.5 - size / 2) / focal, -(j + 0.5 - size / 2) / focal, -np.ones_like(i, float)], -1)
    d = d @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = c2w[:3, 3]
    best = np.full(d.shape[:2], np.inf)
    out = np.zeros(d.shape[:2] + (4,))
    for centre, r, colour in SPHERES:
        oc = o - np.asarray(centre)
        b = d @ oc
        disc = b * b - (oc @ oc - r * r)
        t = -b - np.sqrt(np.maximum(disc, 0))
        hit = (disc > 0) & (t > 0) & (t < best)
        n = (o + d * t[..., None] - np.asarray(centre)) / r
        shade = 0.35 + 0.65 * np.clip(n @ LIGHT, 0, 1)
        out[hit, :3] = (np.asarray(colour) * shade[..., None])[hit]
        out[hit, 3] = 1.0
        best = np.where(hit, t, best)
    return out


def make_scene(root: Path, n_views: int = 16, size: int = 64, blender: bool = False, opaque: bool = False) -> Path:
    """Write the scene under ``root`` (transforms.json, or Blender split files when ``blender``). ``opaque``:
    RGB photos on a grey backdrop and no ``aabb``, a real capture's unbounded (contracted) path."""
    root.mkdir(parents=True, exist_ok=True)
    focal = 0.5 * size / math.tan(0.5 * 0.7)
    frames = []
    for k, pose in enumerate(orbit_poses(n_views)):
        rgba = trace(pose, size, focal)
        sub = "images" if not blender else ("test" if k % 4 == 0 else "train")
        (root / sub).mkdir(exist_ok=True)
        if opaque:
            rgb = rgba[..., :3] * rgba[..., 3:] + 0.45 * (1 - rgba[..., 3:])
            Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), "RGB").save(root / sub / f"r_{k}.png")
        else:
            Image.fromarray((rgba * 255 + 0.5).astype(np.uint8), "RGBA").save(root / sub / f"r_{k}.png")
        frames.append({"file_path": f"./{sub}/r_{k}" + ("" if blender else ".png"), "transform_matrix": pose.tolist()})
    if blender:
        for split in ("train", "test"):
            sel = [f for f in frames if f"/{split}/" in f["file_path"]]
            (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": sel}))
    else:
        meta = {"fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size,
                "aabb": [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]], "frames": frames}
        if opaque:
            del meta["aabb"]
        (root / "transforms.json").write_text(json.dumps(meta))
    return root
