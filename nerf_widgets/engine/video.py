"""Orbit video: a smooth camera path around the trained scene, encoded as H.264 MP4 with PyAV."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.engine.checkpoint import read_run_config
from nerf_widgets.engine.data import load_dataset
from nerf_widgets.engine.field import load_field
from nerf_widgets.engine.rays import Camera

__all__ = ["orbit_cameras", "render_orbit_video"]


def _look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    back = (eye - target) / np.linalg.norm(eye - target)
    right = np.cross(up, back)
    right = right / max(np.linalg.norm(right), 1e-9)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def orbit_cameras(cams: list[Camera], centre: np.ndarray, bounded: bool, frames: int, size: int) -> list[Camera]:
    """Object captures: a full turn (world +Z up) at the cameras' mean distance and elevation.
    Other captures: a small circle around the mean camera position looking at ``centre``."""
    pos = np.stack([c.c2w[:3, 3] for c in cams])
    ref = cams[0]
    s = size / max(ref.width, ref.height)
    w, h = 2 * round(ref.width * s / 2), 2 * round(ref.height * s / 2)
    out = []
    rel = pos - centre
    dist = float(np.linalg.norm(rel, axis=1).mean())
    elev = float(np.arcsin(np.clip(rel[:, 2] / np.linalg.norm(rel, axis=1), -1, 1)).mean())
    spread = float(np.linalg.norm(pos - pos.mean(0), axis=1).mean()) or 0.1 * dist
    for k in range(frames):
        a = 2 * math.pi * k / frames
        if bounded:
            eye = centre + dist * np.array([math.cos(elev) * math.cos(a), math.cos(elev) * math.sin(a), math.sin(elev)])
            c2w = _look_at(eye, centre, np.array([0.0, 0.0, 1.0]))
        else:
            c = cams[0].c2w
            eye = pos.mean(0) + spread * (math.cos(a) * c[:3, 0] + math.sin(a) * c[:3, 1])
            c2w = _look_at(eye, centre, c[:3, 1])
        out.append(Camera(c2w, ref.fx * s, ref.fy * s, w / 2, h / 2, w, h, name=f"orbit_{k:04d}"))
    return out


def render_orbit_video(run_dir: str | Path, out_file: str | Path, frames: int = 120, fps: int = 30,
                       size: int = 400) -> Path:
    """Render ``frames`` orbit views at most ``size`` px on the long side and encode them as MP4."""
    import av

    if frames < 2 or fps < 1:
        raise ValidationError("need at least 2 frames and 1 fps")
    field = load_field(run_dir)
    data = load_dataset(read_run_config(run_dir)["data_dir"])
    centre = (field.aabb[0] + field.aabb[1]).numpy() / 2
    cams = orbit_cameras([data.cameras[i] for i in data.split("train")], centre, field.bounded, frames, size)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = cams[0].width, cams[0].height, "yuv420p"
        for cam in cams:
            img = (np.clip(field.render(cam), 0, 1) * 255 + 0.5).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(out)
    return out
