"""Region proposal after poses: the box around what the cameras look at, sitting on the ground plane.

Works in the normalised frame (``geometry.normalize_scene``: centred on the cameras' focus, up +Z). The
sparse points are scored by how many cameras have them inside a viewing cone: the photographed object
is in nearly every view, background clutter (walls, far objects) only in the few views that face it.
The ground is the plane RANSAC finds among the well-seen points with a normal near +Z, below the cameras.
The box takes robust percentiles of the object points (well seen, above the ground, in the densest
cluster), in a frame whose up is the ground normal and whose yaw follows the points' principal axis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.core.region import Region, yaw_rotation

__all__ = ["camera_sees", "check_seen", "find_floor", "half_fov_deg", "load_cameras", "poses_key", "propose_from_dir", "propose_region", "region_from_aabb"]

Array = NDArray[np.float64]
HALF_FOV_DEG = 30.0  # viewing cone used to score points (about a phone's half field of view)
SEEN_SHARE = 0.5  # object points: seen by at least this share of the best-seen point's cameras
FLOOR_MAX_TILT_DEG = 25.0  # a ground plane's normal is within this angle of the cameras' up
PERCENTILES = (2.0, 98.0)
MARGIN = 0.1  # the box grows by this share of its size on each side
MIN_POINTS = 20
FLOOR_BAND = 0.01  # a point within this share of the camera distance of a plane lies on it
BELOW_SHARE = 0.04  # a ground plane has at most this share of the well-seen points more than 2 bands below it
# (noise). COLMAP on a sphere beside a box seen from above put 7-12 % there under the box's top face.


def _seen_share(points: Array, c2w: Array, half_fov_deg: float) -> Array:
    """[M] share of cameras whose viewing cone holds each point."""
    origins, axes = c2w[:, :3, 3], -c2w[:, :3, 2]
    cos_lim = np.cos(np.radians(half_fov_deg))
    share = np.zeros(len(points))
    for start in range(0, len(points), 8192):
        rel = points[start:start + 8192, None, :] - origins[None]  # [m,N,3]
        dist = np.linalg.norm(rel, axis=2)
        cos = np.einsum("mnk,nk->mn", rel, axes) / np.maximum(dist, 1e-12)
        share[start:start + 8192] = (cos >= cos_lim).mean(axis=1)
    return share


def find_floor(points: Array, up: Array, *, threshold: float, iterations: int = 400,
               seed: int = 0) -> tuple[Array, float, NDArray[np.bool_]] | None:
    """RANSAC plane n.x + d = 0 with n within ``FLOOR_MAX_TILT_DEG`` of ``up`` (n oriented along ``up``).

    Returns (n, d, inliers) refined by least squares on the inliers, or None when no plane holds at least
    15 % of the points (and ``MIN_POINTS``).
    """
    if len(points) < MIN_POINTS:
        return None
    rng = np.random.default_rng(seed)
    cos_tilt = np.cos(np.radians(FLOOR_MAX_TILT_DEG))
    best: NDArray[np.bool_] | None = None
    for _ in range(iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        n = np.cross(b - a, c - a)
        if np.linalg.norm(n) < 1e-12:
            continue
        n /= np.linalg.norm(n)
        n = n if n @ up >= 0 else -n
        if n @ up < cos_tilt:
            continue
        inl = np.abs(points @ n - n @ a) < threshold
        if best is None or inl.sum() > best.sum():
            best = inl
    if best is None or best.sum() < max(MIN_POINTS, 0.15 * len(points)):
        return None
    sel = points[best]
    mean = sel.mean(0)
    n = np.linalg.svd(sel - mean)[2][2]
    n = n if n @ up >= 0 else -n
    inliers = np.abs((points - mean) @ n) < threshold
    return n, float(-n @ mean), inliers


def _ground(candidates: Array, seen: Array, c2w: Array, up: Array, scale: float) -> tuple[Array, float] | None:
    """The ground plane (n, d), or None. A plane the cameras are not above, or one with more than
    ``BELOW_SHARE`` of the well-seen points under it, is the flat top of the object (a table, a box), not the ground.
    """
    found = find_floor(candidates, up, threshold=FLOOR_BAND * scale)
    if found is None:
        return None
    n, d, _ = found
    if np.median(c2w[:, :3, 3] @ n) + d <= 0:
        return None
    below = float(np.mean(seen @ n + d < -2 * FLOOR_BAND * scale))
    return (n, d) if below <= BELOW_SHARE else None


def _densest_cluster(points: Array) -> Array:
    """Points within 3 robust spreads (median absolute deviation) of the median: drops stray points."""
    dist = np.linalg.norm(points - np.median(points, axis=0), axis=1)
    mad = np.median(np.abs(dist - np.median(dist))) + 1e-12
    return points[dist <= np.median(dist) + 3.0 * 1.4826 * mad]


def _principal_yaw(points: Array, up: Array) -> float:
    """Angle (degrees, about ``up``) of the points' main horizontal direction."""
    frame = yaw_rotation(0.0, up)
    xy = (points - points.mean(0)) @ frame[:, :2]
    if len(xy) < 3:
        return 0.0
    vals, vecs = np.linalg.eigh(np.cov(xy.T))
    main = vecs[:, np.argmax(vals)]
    main = main if main[0] >= 0 else -main  # the axis has no sign: keep the yaw within (-90, 90]
    return float(np.degrees(np.arctan2(main[1], main[0])))


def _camera_box(c2w: Array, half_fov_deg: float) -> Region:
    """Without usable points: a cube at the cameras' focus (the origin) filling about half their view."""
    dist = float(np.median(np.linalg.norm(c2w[:, :3, 3], axis=1)))
    side = max(dist * np.tan(np.radians(half_fov_deg)), 1e-3)
    return Region(np.zeros(3), np.full(3, side), np.eye(3), False, None, "proposed")


def _focus(c2w: Array) -> Array | None:
    """The point closest to all optical axes when the views spread (an object capture), else None."""
    origins, dirs = c2w[:, :3, 3], -c2w[:, :3, 2]
    if len(c2w) < 3 or np.linalg.norm(dirs.mean(0)) > 0.9:
        return None
    proj = np.eye(3)[None] - dirs[:, :, None] * dirs[:, None, :]
    return np.asarray(np.linalg.lstsq(proj.sum(0), (proj @ origins[:, :, None]).sum(0)[:, 0], rcond=None)[0])


def _box(points: Array, rot: Array, floor: tuple[Array, float] | None, focus: Array | None) -> Region:
    local = points @ rot
    lo, hi = np.percentile(local, PERCENTILES[0], axis=0), np.percentile(local, PERCENTILES[1], axis=0)
    pad = MARGIN * np.maximum(hi - lo, 1e-3 * max(float(np.max(hi - lo)), 1e-3))
    lo, hi = lo - pad, hi + pad
    if floor is not None:
        lo[2] = -floor[1]  # the box sits on the ground plane (n = rot[:, 2], so local z of the plane is -d)
    elif focus is not None:
        # cameras looking down see no underside: the object reaches as far below their focus as above it
        f = focus @ rot
        lo, hi = np.minimum(lo, f), np.maximum(hi, f)
        lo[2] = min(lo[2], 2 * f[2] - hi[2])
    center = rot @ (0.5 * (lo + hi))
    plane = (*floor[0].tolist(), floor[1]) if floor is not None else None
    return Region(center, hi - lo, rot, floor is not None, plane, "proposed")  # type: ignore[arg-type]


def propose_region(c2w: Array, points: Array | None = None, *, half_fov_deg: float = HALF_FOV_DEG) -> Region:
    """The proposed region for cameras [N,4,4] (OpenGL c2w, normalised frame) and sparse points [M,3]."""
    c2w = np.asarray(c2w, np.float64).reshape(-1, 4, 4)
    if len(c2w) == 0:
        raise ValidationError("no cameras: a region needs poses")
    up = c2w[:, :3, 1].mean(0)
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-6 else np.array([0.0, 0.0, 1.0])
    pts = np.asarray(points, np.float64).reshape(-1, 3) if points is not None else np.zeros((0, 3))
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < MIN_POINTS:
        return _camera_box(c2w, half_fov_deg)
    share = _seen_share(pts, c2w, half_fov_deg)
    seen = share >= SEEN_SHARE * share.max()
    scale = float(np.median(np.linalg.norm(c2w[:, :3, 3] - pts[seen].mean(0), axis=1)))
    candidates = pts[share >= 0.5 * SEEN_SHARE * share.max()]
    obj = pts[seen]
    floor = _ground(candidates, obj, c2w, up, scale)
    if floor is not None:
        obj = obj[obj @ floor[0] + floor[1] > 1.5 * FLOOR_BAND * scale]
    if len(obj) < MIN_POINTS:
        return _camera_box(c2w, half_fov_deg)
    obj = _densest_cluster(obj)
    ground_up = floor[0] if floor is not None else up
    rot = yaw_rotation(_principal_yaw(obj, ground_up), ground_up)
    return _box(obj, rot, floor, _focus(c2w))


def camera_sees(region: Region, c2w: Array, half_fov_deg: float = 60.0) -> NDArray[np.bool_]:
    """[N] bool: the box overlaps each camera's viewing cone (in front of it, within the field of view)."""
    c2w = np.asarray(c2w, np.float64).reshape(-1, 4, 4)
    rel = region.center - c2w[:, :3, 3]
    dist = np.linalg.norm(rel, axis=1)
    radius = 0.5 * float(np.linalg.norm(region.size))
    cos = np.einsum("nk,nk->n", rel, -c2w[:, :3, 2]) / np.maximum(dist, 1e-12)
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    reach = np.degrees(np.arcsin(np.clip(radius / np.maximum(dist, 1e-12), 0.0, 1.0)))
    return (dist <= radius) | (angle <= half_fov_deg + reach)


def half_fov_deg(transforms: dict[str, Any]) -> float:
    """Half the widest (diagonal) field of view of the frames in a transforms.json payload; 60 when unknown."""
    widest = 0.0
    for entry in [transforms, *transforms.get("frames", [])]:
        w, h = entry.get("w"), entry.get("h")
        fl = min(entry.get("fl_x") or 0.0, entry.get("fl_y") or entry.get("fl_x") or 0.0)
        if w and h and fl > 0:
            widest = max(widest, float(np.degrees(np.arctan(0.5 * np.hypot(w, h) / fl))))
    return widest or 60.0


def check_seen(region: Region, c2w: Array, half_fov: float = 60.0) -> None:
    """Raise ``ValidationError`` when no camera looks at the box (it would hold nothing the photos show)."""
    if len(c2w) and not camera_sees(region, c2w, half_fov).any():
        raise ValidationError(
            f"region at {np.round(region.center, 3).tolist()} (size {np.round(region.size, 3).tolist()}) is seen by "
            f"none of the {len(c2w)} cameras; move it to where the cameras look", field="center")


def region_from_aabb(aabb: Array, matrix: Array | None = None) -> Region:
    """An axis-aligned box [2,3] given in the source frame, moved by a similarity ``matrix`` [4,4] (normalisation)."""
    box = np.asarray(aabb, np.float64)
    if box.shape != (2, 3) or not np.all(np.isfinite(box)):
        raise ValidationError(f"aabb must be [[xmin, ymin, zmin], [xmax, ymax, zmax]], got {box.tolist()}", field="aabb")
    m = np.eye(4) if matrix is None else np.asarray(matrix, np.float64)
    scale = float(np.cbrt(abs(np.linalg.det(m[:3, :3]))))
    rot = m[:3, :3] / scale
    center = m[:3, :3] @ box.mean(0) + m[:3, 3]
    return Region.from_dict({"center": center, "size": scale * (box[1] - box[0]), "rotation": rot,
                             "source": "import"})


def poses_key(poses_dir: Path) -> str:
    """Identifies one set of poses: transforms.json's size and modification time (new poses, new key)."""
    path = Path(poses_dir) / "transforms.json"
    if not path.is_file():
        raise NotFoundError("This project has no poses yet: estimate or import poses first; the region is "
                            "proposed from them.")
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def load_cameras(poses_dir: Path) -> tuple[Array, dict[str, Any]]:
    """(c2w [N,4,4], the transforms.json payload) of a poses folder."""
    path = Path(poses_dir) / "transforms.json"
    if not path.is_file():
        raise NotFoundError(f"no poses in {poses_dir}: estimate or import poses first")
    data = json.loads(path.read_text())
    return np.array([f["transform_matrix"] for f in data["frames"]], np.float64).reshape(-1, 4, 4), data


def propose_from_dir(poses_dir: Path) -> Region:
    """The proposal for a poses folder (transforms.json + points3D.ply when present)."""
    from nerf_widgets.poses.writer import read_ply

    c2w, _ = load_cameras(poses_dir)
    ply = Path(poses_dir) / "points3D.ply"
    points = read_ply(ply)[0].astype(np.float64) if ply.is_file() else None
    return propose_region(c2w, points)
