"""pycolmap steps: image checks, SIFT extraction per camera group, matching of chosen pairs, mapping.

pycolmap is imported lazily and only after zlib and Pillow: pycolmap 4.x ships its own zlib, and
when it is loaded first, later users of zlib (PNG writing, gzip) crash with ``free(): invalid pointer``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nerf_widgets.core.errors import CancelledError, stop_if_asked
from nerf_widgets.poses.types import StopFn

__all__ = [
    "InputImage",
    "extract_features",
    "inspect_images",
    "load_pycolmap",
    "match_pairs",
    "run_mapper",
    "stop_watcher",
    "verified_neighbours",
]

MIN_FEATURES = 40  # an image with fewer SIFT features cannot be registered reliably
_EXIF_MAKE, _EXIF_MODEL, _EXIF_FOCAL, _EXIF_IFD = 271, 272, 37386, 34665


def load_pycolmap() -> ModuleType:
    """Import pycolmap safely (zlib and Pillow's codecs first, see the module docstring)."""
    import zlib  # noqa: F401

    import PIL.Image  # noqa: F401
    import PIL.PngImagePlugin  # noqa: F401
    import pycolmap

    if os.environ.get("NERF_WIDGETS_COLMAP_LOG") != "1":  # COLMAP's per-image INFO lines drown our progress
        pycolmap.logging.minloglevel = int(pycolmap.logging.Level.WARNING.value)
    return pycolmap


_THREADS: ContextVar[int | None] = ContextVar("colmap_threads", default=None)


def threads() -> int:
    """COLMAP's worker threads: one per core unless ``use_threads`` says otherwise."""
    return _THREADS.get() or max(1, os.cpu_count() or 1)


@contextmanager
def use_threads(n: int | None) -> Iterator[None]:
    """Run COLMAP with ``n`` threads inside the block (1 makes a run repeatable bit for bit)."""
    token = _THREADS.set(n)
    try:
        yield
    finally:
        _THREADS.reset(token)


@dataclass
class InputImage:
    """One input after checking: ``name`` is its unique name in the staging folder COLMAP reads."""

    path: Path
    name: str
    width: int = 0
    height: int = 0
    camera_key: tuple[Any, ...] = ()
    has_mask: bool = False
    focal_prior: float | None = None  # px, from a caller-supplied 35 mm-equivalent focal length
    problem: str | None = None
    thumb: NDArray[np.float32] | None = None  # [32*32] grey, for the sequence test


def _exif_key(img: Any) -> tuple[Any, ...]:
    exif = img.getexif()
    focal = exif.get_ifd(_EXIF_IFD).get(_EXIF_FOCAL) or exif.get(_EXIF_FOCAL)
    return (str(exif.get(_EXIF_MAKE, "")).strip(), str(exif.get(_EXIF_MODEL, "")).strip(),
            float(focal) if focal else None)


def _inspect_one(path: Path, name: str, images_dir: Path, masks_dir: Path | None) -> InputImage:
    from PIL import Image, UnidentifiedImageError

    item = InputImage(path=path, name=name)
    try:
        with Image.open(path) as img:
            img.load()
            item.width, item.height = img.size
            item.camera_key = (*_exif_key(img), img.size)
            alpha = np.asarray(img.getchannel("A")) if "A" in img.getbands() else None
            grey = np.asarray(img.convert("L"), dtype=np.float32)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        item.problem = f"unreadable image ({err})"
        return item
    item.thumb = np.asarray(Image.fromarray(grey.astype(np.uint8)).resize((32, 32)), np.float32).ravel()
    visible = grey[alpha > 127] if alpha is not None else grey.ravel()
    if visible.size == 0:
        item.problem = "fully transparent image (alpha is 0 everywhere)"
    elif float(visible.std()) < 2.0:
        shade = "all black" if float(visible.mean()) < 8 else f"uniform grey level {visible.mean():.0f}"
        item.problem = f"blank image ({shade}): no texture to match"
    (images_dir / name).symlink_to(Path(path).resolve())
    if masks_dir is not None and item.problem is None:
        keep = alpha > 127 if alpha is not None else np.ones(grey.shape, bool)
        Image.fromarray(np.where(keep, 255, 0).astype(np.uint8)).save(masks_dir / f"{name}.png")
        item.has_mask = not bool(keep.all())
    return item


def inspect_images(paths: Sequence[Path], stage: Path, use_masks: bool = True) -> list[InputImage]:
    """Check each image (readable, not blank), link it into ``stage/images`` and write alpha masks.

    Masks (``stage/masks/<name>.png``, 0 = ignore) follow COLMAP's naming; pixels with alpha <= 127
    get no features, so a transparent background cannot produce matches. With masks on, every image
    gets one (all 255 without alpha) because COLMAP skips images whose mask file is missing.
    """
    images_dir, masks_dir = stage / "images", stage / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    seen: set[str] = set()
    items = []
    for k, path in enumerate(paths):
        name = Path(path).name
        if name in seen:
            name = f"{k:05d}_{name}"
        seen.add(name)
        items.append(_inspect_one(Path(path), name, images_dir, masks_dir if use_masks else None))
    return items


@contextmanager
def stop_watcher(token: Any, should_stop: StopFn | None, period: float = 0.1) -> Iterator[None]:
    """Poll ``should_stop`` on a thread and cancel the pycolmap token, so long calls stop mid-way."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(period):
            if should_stop is not None and should_stop():
                token.cancel()
                return

    thread = threading.Thread(target=watch, name="poses-stop-watcher", daemon=True)
    if should_stop is not None:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if thread.is_alive():
            thread.join()


@contextmanager
def _cancellable(stage: str, token: Any) -> Iterator[None]:
    """Turn pycolmap's InterruptedError (raised when the token is cancelled) into our CancelledError."""
    try:
        yield
    except InterruptedError as err:
        raise CancelledError(f"pose estimation cancelled during {stage}", stage=stage) from err
    if token.is_cancelled:
        raise CancelledError(f"pose estimation cancelled during {stage}", stage=stage)


def check_stop(should_stop: StopFn | None, stage: str) -> None:
    stop_if_asked(should_stop, f"pose estimation cancelled during {stage}", stage=stage)


def extract_features(pc: ModuleType, db_path: Path, stage: Path, groups: list[list[InputImage]], camera_model: str,
                     token: Any, on_image: Callable[[int], None], use_masks: bool = True, chunk: int = 8) -> None:
    """SIFT per camera group: the first chunk creates the group's camera (EXIF focal as prior), the rest reuse it."""
    reader = pc.ImageReaderOptions()
    reader.camera_model = camera_model
    reader.mask_path = str(stage / "masks") if use_masks else ""
    opts = pc.FeatureExtractionOptions()
    opts.num_threads = threads()
    opts.use_gpu = bool(pc.has_cuda)
    opts.sift.max_num_features = 8192
    done = 0
    for group in groups:
        reader.existing_camera_id = -1
        reader.camera_params = _prior_params(camera_model, group[0])
        for start in range(0, len(group), chunk):
            names = [im.name for im in group[start:start + chunk]]
            with _cancellable("extract", token):
                pc.extract_features(db_path, stage / "images", image_names=names, camera_mode=pc.CameraMode.SINGLE,
                                    reader_options=reader, extraction_options=opts, device=pc.Device.auto,
                                    cancellation_token=token)
            if reader.existing_camera_id == -1:
                with _open_db(pc, db_path) as db:
                    reader.existing_camera_id = db.read_image_with_name(names[0]).camera_id
            done += len(names)
            on_image(done)


def _prior_params(model: str, item: InputImage) -> str:
    """COLMAP's ``camera_params`` string for a known focal prior (empty: let COLMAP read EXIF / guess)."""
    if item.focal_prior is None:
        return ""
    f, cx, cy = item.focal_prior, item.width / 2, item.height / 2
    params = {"SIMPLE_PINHOLE": [f, cx, cy], "PINHOLE": [f, f, cx, cy], "SIMPLE_RADIAL": [f, cx, cy, 0.0],
              "RADIAL": [f, cx, cy, 0.0, 0.0], "OPENCV": [f, f, cx, cy, 0.0, 0.0, 0.0, 0.0]}[model]
    return ",".join(f"{v:.6f}" for v in params)


@contextmanager
def _open_db(pc: ModuleType, db_path: Path) -> Iterator[Any]:
    db = pc.Database.open(str(db_path))
    try:
        yield db
    finally:
        db.close()


def read_keypoint_counts(pc: ModuleType, db_path: Path) -> dict[str, int]:
    with _open_db(pc, db_path) as db:
        return {im.name: db.num_keypoints_for_image(im.image_id) for im in db.read_all_images()}


def read_descriptors(pc: ModuleType, db_path: Path, names: Sequence[str]) -> list[NDArray[np.uint8]]:
    with _open_db(pc, db_path) as db:
        out = []
        for name in names:
            desc = db.read_descriptors(db.read_image_with_name(name).image_id)
            out.append(np.asarray(getattr(desc, "data", desc), dtype=np.uint8).reshape(-1, 128))
        return out


def match_pairs(pc: ModuleType, db_path: Path, stage: Path, pairs: list[tuple[str, str]], token: Any,
                on_pairs: Callable[[int], None], block: int = 300) -> None:
    """Match and geometrically verify the given name pairs in blocks (progress and cancellation per block)."""
    opts = pc.FeatureMatchingOptions()
    opts.num_threads = threads()
    opts.use_gpu = bool(pc.has_cuda)
    pairing = pc.ImportedPairingOptions()
    for start in range(0, len(pairs), block):
        path = stage / "pairs.txt"
        path.write_text("".join(f"{a} {b}\n" for a, b in pairs[start:start + block]))
        pairing.match_list_path = str(path)
        with _cancellable("match", token):
            pc.match_image_pairs(db_path, matching_options=opts, pairing_options=pairing, device=pc.Device.auto,
                                 cancellation_token=token)
        on_pairs(min(len(pairs), start + block))


def verified_neighbours(pc: ModuleType, db_path: Path, min_inliers: int = 15) -> dict[str, set[str]]:
    """For each image name, the images it shares at least ``min_inliers`` verified matches with."""
    with _open_db(pc, db_path) as db:
        names = {im.image_id: im.name for im in db.read_all_images()}
        pair_ids, geometries = db.read_two_view_geometries()
    out: dict[str, set[str]] = {n: set() for n in names.values()}
    for pid, tvg in zip(pair_ids, geometries, strict=False):
        if len(tvg.inlier_matches) >= min_inliers:
            a, b = pc.pair_id_to_image_pair(pid)
            out[names[a]].add(names[b])
            out[names[b]].add(names[a])
    return out


def run_mapper(pc: ModuleType, mapper: str, db_path: Path, stage: Path, token: Any,
               on_image: Callable[[], None]) -> list[Any]:
    """Run incremental or global mapping; return the reconstructions, largest first."""
    out = stage / "sparse"
    out.mkdir(exist_ok=True)
    if mapper == "global":
        gopts = pc.GlobalPipelineOptions()
        gopts.num_threads = threads()
        gopts.min_model_size = 3
        gopts.random_seed = gopts.mapper.random_seed = 0
        gopts.mapper.rotation_averaging.random_seed = gopts.mapper.global_positioning.random_seed = 0
        gopts.mapper.global_positioning.use_gpu = gopts.mapper.bundle_adjustment.ceres.use_gpu = bool(pc.has_cuda)
        # not calibrate_view_graph: on our synthetic set it raised the median rotation error from 0.26 to 5.2 deg
        recs = pc.global_mapping(db_path, stage / "images", out, options=gopts)
    else:
        iopts = pc.IncrementalPipelineOptions()
        iopts.num_threads = threads()
        iopts.min_model_size = 3
        iopts.random_seed = iopts.mapper.random_seed = iopts.triangulation.random_seed = 0
        iopts.extract_colors = True
        with _cancellable("map", token):
            recs = pc.incremental_mapping(db_path, stage / "images", out, options=iopts,
                                          next_image_callback=on_image, cancellation_token=token)
    return sorted(recs.values(), key=lambda r: r.num_reg_images(), reverse=True)
