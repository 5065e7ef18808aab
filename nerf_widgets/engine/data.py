"""Read posed images: nerfstudio / instant-ngp ``transforms.json`` or the NeRF Blender split layout.

All frames of one dataset must share a resolution. RGBA images keep their alpha (a mask): the trainer
composites them on a background colour. Malformed input raises ``ValidationError`` before anything
is trained or written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.core.region import Region
from nerf_widgets.engine.rays import Camera

__all__ = ["Dataset", "apply_region", "load_cameras", "load_dataset", "region_normalization", "scene_normalization"]

SPLITS = ("train", "val", "test")
IMAGE_EXTS = ("", ".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


@dataclass
class Dataset:
    """Images [N,H,W,3|4] uint8 with one ``Camera`` each, split indices, and scene bounds.

    ``transform`` [4,4] maps world coordinates into the normalised frame the models work in;
    ``bounded`` scenes live in ``aabb`` (normalised frame), unbounded ones are contracted. A region of
    interest (``apply_region``) changes the transform (unbounded) or the box (bounded), nothing else.
    """

    images: np.ndarray
    cameras: list[Camera]
    splits: dict[str, list[int]]
    transform: np.ndarray
    aabb: np.ndarray
    bounded: bool
    near: float
    root: Path = field(default_factory=Path)
    t_lin: float | None = None  # unbounded, with a region: depth of the far side of the unit ball (``apply_region``)

    @property
    def has_alpha(self) -> bool:
        return self.images.shape[-1] == 4

    def split(self, name: str) -> list[int]:
        return self.splits.get(name) or self.splits.get("val") or self.splits["train"]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValidationError(f"cannot read {path.name}: {err}", path=str(path)) from err
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise ValidationError(f"{path.name} has no 'frames' list", path=str(path))
    return meta


def _c2w(frame: dict[str, Any], where: str) -> np.ndarray:
    try:
        m = np.asarray(frame["transform_matrix"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise ValidationError(f"{where}: missing or malformed transform_matrix") from err
    if m.shape not in ((4, 4), (3, 4)) or not np.all(np.isfinite(m)):
        raise ValidationError(f"{where}: transform_matrix must be a finite 4x4 matrix")
    r = m[:3, :3]
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-3) or np.linalg.det(r) < 0:
        raise ValidationError(f"{where}: transform_matrix is not a rigid rotation + translation")
    return np.vstack([m[:3, :4], [0, 0, 0, 1]])


def _intrinsics(meta: dict[str, Any], frame: dict[str, Any], w: int, h: int, where: str) -> dict[str, Any]:
    def get(k: str) -> Any:  # frame values override the file's
        return frame.get(k, meta.get(k))

    fx, fy = get("fl_x"), get("fl_y")
    if fx is None and get("camera_angle_x") is not None:
        fx = 0.5 * w / math.tan(0.5 * float(get("camera_angle_x")))
    if fy is None and get("camera_angle_y") is not None:
        fy = 0.5 * h / math.tan(0.5 * float(get("camera_angle_y")))
    fx = fy if fx is None else fx
    fy = fx if fy is None else fy
    if fx is None or not (float(fx) > 0):
        raise ValidationError(f"{where}: no intrinsics (need fl_x/fl_y or camera_angle_x)")
    cx, cy = get("cx"), get("cy")
    dist = tuple(float(get(k) or 0.0) for k in ("k1", "k2", "p1", "p2"))
    return {"fx": float(fx), "fy": float(fy), "cx": float(w / 2 if cx is None else cx),
            "cy": float(h / 2 if cy is None else cy), "dist": dist}


def _frame_path(root: Path, frame: dict[str, Any], where: str) -> Path:
    rel = frame.get("file_path")
    if not isinstance(rel, str) or not rel:
        raise ValidationError(f"{where}: missing file_path")
    for ext in IMAGE_EXTS:
        p = root / (rel + ext)
        if p.is_file():
            return p
    raise ValidationError(f"{where}: image {rel!r} not found under {root}", path=str(root / rel))


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB")
            return np.asarray(rgb)
    except (OSError, UnidentifiedImageError) as err:
        raise ValidationError(f"unreadable image {path.name}: {err}", path=str(path)) from err


def load_cameras(path: str | Path, size_from_images: bool = False) -> list[Camera]:
    """Cameras of one transforms file, without loading images unless the file gives no ``w``/``h``."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"camera file {path} does not exist", path=str(path))
    meta = _read_json(path)
    cams = []
    for i, frame in enumerate(meta["frames"]):
        where = f"{path.name} frame {i}"
        w, h = frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))
        if w is None or h is None or size_from_images:
            img = _load_image(_frame_path(path.parent, frame, where))
            h, w = img.shape[:2]
        cams.append(_camera(meta, frame, int(w), int(h), where))
    return cams


def _camera(meta: dict[str, Any], frame: dict[str, Any], w: int, h: int, where: str) -> Camera:
    k = _intrinsics(meta, frame, w, h, where)
    near, far = frame.get("near"), frame.get("far")
    return Camera(c2w=_c2w(frame, where), fx=k["fx"], fy=k["fy"], cx=k["cx"], cy=k["cy"], width=w, height=h,
                  distortion=k["dist"], name=Path(str(frame.get("file_path", f"frame_{len(where)}"))).stem,
                  near=None if near is None else float(near), far=None if far is None else float(far))


def _read_frames(root: Path, meta: dict[str, Any], name: str) -> tuple[list[np.ndarray], list[Camera]]:
    images, cams = [], []
    if not meta["frames"]:
        raise ValidationError(f"{name} lists no frames")
    for i, frame in enumerate(meta["frames"]):
        where = f"{name} frame {i}"
        img = _load_image(_frame_path(root, frame, where))
        h, w = img.shape[:2]
        fw, fh = frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))
        if fw is not None and fh is not None and (int(fw), int(fh)) != (w, h):
            raise ValidationError(f"{where}: image is {w}x{h} but the file says {fw}x{fh}")
        cams.append(_camera(meta, frame, w, h, where))
        images.append(img)
    return images, cams


def load_dataset(data_dir: str | Path) -> Dataset:
    """Load a folder holding ``transforms.json`` or ``transforms_{train,val,test}.json``."""
    root = Path(data_dir)
    if not root.is_dir():
        raise NotFoundError(f"data folder {root} does not exist", path=str(root))
    split_files = {s: root / f"transforms_{s}.json" for s in SPLITS if (root / f"transforms_{s}.json").is_file()}
    images: list[np.ndarray] = []
    cams: list[Camera] = []
    splits: dict[str, list[int]] = {}
    metas = []
    if "train" in split_files:
        for s, p in split_files.items():
            meta = _read_json(p)
            imgs, cs = _read_frames(root, meta, p.name)
            splits[s] = list(range(len(images), len(images) + len(imgs)))
            images += imgs
            cams += cs
            metas.append(meta)
    elif (root / "transforms.json").is_file():
        meta = _read_json(root / "transforms.json")
        images, cams = _read_frames(root, meta, "transforms.json")
        n = len(images)
        test = [i for i in range(n) if i % 8 == 0] if n >= 8 else []
        splits = {"train": [i for i in range(n) if i not in test] or list(range(n)), "test": test}
        metas.append(meta)
    else:
        raise ValidationError(f"{root} has neither transforms.json nor transforms_train.json", path=str(root))
    return _assemble(root, images, cams, splits, metas)


def _assemble(root: Path, images: list[np.ndarray], cams: list[Camera], splits: dict[str, list[int]],
              metas: list[dict[str, Any]]) -> Dataset:
    shapes = {im.shape for im in images}
    if len({s[:2] for s in shapes}) > 1:
        raise ValidationError(f"inconsistent image sizes in {root}: {sorted({s[:2] for s in shapes})}")
    if len({s[2] for s in shapes}) > 1:  # mixed RGB / RGBA: give RGB frames an opaque alpha
        images = [im if im.shape[2] == 4 else np.dstack([im, np.full(im.shape[:2], 255, np.uint8)]) for im in images]
    box = next((m.get("aabb") for m in metas if m.get("aabb") is not None), None)
    blender = "camera_angle_x" in metas[0] and "fl_x" not in metas[0] and images[0].shape[2] == 4
    stacked = np.stack(images)
    if box is None and not blender and stacked.shape[-1] == 4 and bool((stacked[..., 3] < 255).any()):
        box = object_box(cams)  # masked photos (e.g. posed by COLMAP, no aabb in the file) are an object capture
    transform, aabb, bounded, near = scene_normalization(cams, box, blender)
    return Dataset(stacked, cams, splits, transform, aabb, bounded, near, root)


def object_box(cams: list[Camera]) -> list[list[float]]:
    """A cube around the point the cameras look at, as large as the median view can hold at the median
    distance (lego: +-1.45 against Blender's +-1.5). Carving from the masks then empties what is not object,
    so the fast bounded path replaces the contracted one, which starts as fog and is many times slower."""
    pos = np.stack([c.c2w[:3, 3] for c in cams])
    focus = _closest_point_to_axes(pos, np.stack([-c.c2w[:3, 2] for c in cams]))
    dist = float(np.median(np.linalg.norm(pos - focus, axis=1)))
    half_fov = float(np.median([min(c.width / (2 * c.fx), c.height / (2 * c.fy)) for c in cams]))
    half = dist * half_fov  # tan of the half field of view, times the distance
    return [(focus - half).tolist(), (focus + half).tolist()]


def scene_normalization(cams: list[Camera], box: Any, blender: bool) -> tuple[np.ndarray, np.ndarray, bool, float]:
    """World -> model frame. Objects keep their box (given ``aabb`` or Blender's [-1.5, 1.5]^3); other
    captures are centred on the point the cameras look at and scaled so the content sits near the unit ball
    (contracted beyond it)."""
    if box is not None or blender:
        aabb = np.asarray(box if box is not None else [[-1.5] * 3, [1.5] * 3], dtype=np.float64).reshape(2, 3)
        if not np.all(np.isfinite(aabb)) or np.any(aabb[1] <= aabb[0]):
            raise ValidationError("aabb must be [[xmin, ymin, zmin], [xmax, ymax, zmax]] with max > min")
        return np.eye(4), aabb, True, 0.05 * float(np.min(aabb[1] - aabb[0]))
    pos = np.stack([c.c2w[:3, 3] for c in cams])
    fwd = np.stack([-c.c2w[:3, 2] for c in cams])
    focus = _closest_point_to_axes(pos, fwd)
    nears = [c.near for c in cams if c.near is not None]
    if nears:  # forward-facing capture with known depth range: content starts around the median near plane
        focus = pos.mean(0) + fwd.mean(0) / np.linalg.norm(fwd.mean(0)) * float(np.median(nears))
    radius = float(np.median(np.linalg.norm(pos - focus, axis=1))) or 1.0
    scale = 1.0 / radius
    t = np.eye(4)
    t[:3, :3] *= scale
    t[:3, 3] = -focus * scale
    near = 0.5 * float(np.min(nears)) * scale if nears else 0.05
    return t, np.array([[-2.0] * 3, [2.0] * 3]), False, near


def apply_region(data: Dataset, region: Mapping[str, Any] | Region | None) -> Dataset:
    """``data`` whose model frame spends the field's resolution on ``region`` (a ``core.region.Region`` or its
    dict, world frame): an unbounded scene is re-centred and scaled so the region fills the uncontracted unit
    ball (``region_normalization``); a bounded one keeps the part of its box inside the region's bounds."""
    if region is None:
        return data
    box = Region.from_dict(region)
    if data.bounded:  # bounded scenes keep the identity transform: their box is in world units
        lo, hi = np.maximum(data.aabb[0], box.aabb()[0]), np.minimum(data.aabb[1], box.aabb()[1])
        if np.any(hi <= lo):
            raise ValidationError(f"the region {box.aabb().round(3).tolist()} lies outside the scene's box "
                                  f"{data.aabb.round(3).tolist()}")
        return replace(data, aabb=np.stack([lo, hi]), near=0.05 * float(np.min(hi - lo)))
    transform, near, t_lin = region_normalization(data.cameras, box)
    return replace(data, transform=transform, near=near, t_lin=t_lin)


REGION_RADIUS = 1.0  # the region's half-diagonal in the model frame: its corners touch the unit ball
# The cameras stay within twice the ball's radius (instant-ngp's and nerfstudio's frames put them about there):
# a region much smaller than the cameras' distance would push them, and the room they see, into a thin outer
# shell of the contracted grid (the room then bleeds into the object), and lengthen the even-step part of a ray.
MAX_CAMERA_RADIUS = 2.0


def region_normalization(cams: list[Camera], region: Region) -> tuple[np.ndarray, float, float]:
    """World -> model frame of an unbounded scene with a region of interest: the region's centre at the origin,
    scaled so its 8 corners lie on the unit ball (everything in it is uncontracted, where the contracted grid
    is finest: mip-NeRF 360's inner ball holds half of the [-2, 2] grid's cells per axis), unless that puts the
    median camera beyond ``MAX_CAMERA_RADIUS`` (then the region is smaller, still centred and uncontracted).
    No rotation (the ball is round; world +Z stays up).

    Returns (transform [4,4], near, t_lin): ``t_lin`` is the median depth of the ball's far side from the
    cameras, where ``fast``'s even steps give way to steps uniform in disparity."""
    half_diagonal = 0.5 * float(np.linalg.norm(region.size))
    pos = np.stack([c.c2w[:3, 3] for c in cams])
    dist = float(np.median(np.linalg.norm(pos - region.center, axis=1)))
    scale = min(REGION_RADIUS / half_diagonal, MAX_CAMERA_RADIUS / max(dist, 1e-12))
    t = np.eye(4)
    t[:3, :3] *= scale
    t[:3, 3] = -region.center * scale
    nears = [c.near for c in cams if c.near is not None]
    near = 0.5 * float(np.min(nears)) * scale if nears else 0.05
    return t, near, dist * scale + REGION_RADIUS


def _closest_point_to_axes(pos: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Least-squares point nearest to all optical axes; the camera centroid when the axes are parallel."""
    d = fwd / np.linalg.norm(fwd, axis=1, keepdims=True)
    proj = np.eye(3)[None] - d[:, :, None] * d[:, None, :]
    a, b = proj.sum(0), (proj @ pos[:, :, None]).sum(0)[:, 0]
    if np.linalg.cond(a) > 1e4:
        return pos.mean(0) + d.mean(0)
    return np.linalg.solve(a, b)
