"""Structure from motion with pycolmap: photos -> normalised transforms.json, points3D.ply, report.json.

Stages (with their share of the overall progress): check, extract, match, map, normalize, write.
Cancellation is checked between stages and inside the long pycolmap calls (through a cancellation
token); nothing reaches ``out_dir`` unless the whole run succeeds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.poses import pairs as pairing
from nerf_widgets.poses import sfm
from nerf_widgets.poses.colmap_io import intrinsics_from_colmap
from nerf_widgets.poses.geometry import c2w_from_world_to_cam, normalize_scene
from nerf_widgets.poses.types import CameraPrior, ImageOutcome, PosedFrame, PoseProgress, PoseReport, ProgressFn, StopFn
from nerf_widgets.poses.writer import staging_dir, write_outputs

__all__ = ["CAMERA_MODELS", "MAPPERS", "estimate_poses", "failure"]

MAPPERS = ("auto", "incremental", "global")
CAMERA_MODELS = ("SIMPLE_RADIAL", "OPENCV", "SIMPLE_PINHOLE", "PINHOLE", "RADIAL")
GLOBAL_MIN_IMAGES = 500  # auto picks global mapping from this many images (see choose_mapper)
_STAGES = {"check": 0.05, "extract": 0.35, "match": 0.3, "map": 0.25, "normalize": 0.03, "write": 0.02}


class _Progress:
    """Turns (stage, fraction within stage) into :class:`PoseProgress` events with an overall fraction."""

    def __init__(self, fn: ProgressFn | None, should_stop: StopFn | None) -> None:
        self.fn, self.should_stop = fn, should_stop
        self.timings: dict[str, float] = {}
        self._stage, self._t0 = "", time.perf_counter()

    def start(self, stage: str) -> None:
        sfm.check_stop(self.should_stop, self._stage or stage)
        self._finish()
        self._stage, self._t0 = stage, time.perf_counter()
        self(0.0)

    def __call__(self, fraction: float, message: str = "") -> None:
        names = list(_STAGES)
        before = sum(_STAGES[s] for s in names[: names.index(self._stage)])
        if self.fn is not None:
            frac = min(1.0, max(0.0, fraction))
            self.fn(PoseProgress(self._stage, frac, before + frac * _STAGES[self._stage], message))

    def _finish(self) -> None:
        if self._stage:
            self.timings[self._stage] = round(time.perf_counter() - self._t0, 3)

    def done(self) -> None:
        self(1.0)
        self._finish()


def failure(summary: str, reasons: dict[str, str]) -> ValidationError:
    """A ValidationError whose message lists each image and why it could not be used."""
    lines = [f"  {name}: {why}" for name, why in sorted(reasons.items())]
    shown = lines[:25] + ([f"  ... and {len(lines) - 25} more"] if len(lines) > 25 else [])
    return ValidationError("pose estimation failed: " + summary + ("\n" + "\n".join(shown) if shown else ""),
                           images=reasons)


def choose_mapper(requested: str, n: int) -> tuple[str, str]:
    """Incremental below ``GLOBAL_MIN_IMAGES``, global (GLOMAP) from there.

    Measured (tests/bench/poses_lego.py, 2 loaded cores): lego 100 views and fern 20 views register
    fully with both; global was slightly more accurate (lego median 0.22 vs 0.26 deg, fern 0.23 vs
    0.33 deg) but its mapping took 10-30 % longer, and only incremental reports per-image progress
    and can be cancelled mid-stage. Global mapping's advantage is at scale (rotation averaging
    instead of hundreds of sequential registrations), so auto switches there.
    """
    if requested != "auto":
        return requested, f"{requested} (requested)"
    if n >= GLOBAL_MIN_IMAGES:
        return "global", f"global ({n} images >= {GLOBAL_MIN_IMAGES}: scales better than incremental)"
    return "incremental", f"incremental ({n} images < {GLOBAL_MIN_IMAGES}: as accurate, faster, cancellable)"


def _check_args(paths: list[Path], matcher: str, mapper: str, camera_model: str) -> None:
    if matcher not in pairing.MATCHERS:
        raise ValidationError(f"matcher must be one of {', '.join(pairing.MATCHERS)}, got {matcher!r}")
    if mapper not in MAPPERS:
        raise ValidationError(f"mapper must be one of {', '.join(MAPPERS)}, got {mapper!r}")
    if camera_model not in CAMERA_MODELS:
        raise ValidationError(f"camera model must be one of {', '.join(CAMERA_MODELS)}, got {camera_model!r}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise NotFoundError(f"{len(missing)} image file(s) not found: {', '.join(missing[:10])}", missing=missing)
    if len(paths) < 3:
        raise failure(f"at least 3 images are needed, got {len(paths)}",
                      {p.name: "too few images for structure from motion" for p in paths})


def _problems(items: list[sfm.InputImage]) -> dict[str, str]:
    return {it.name: it.problem for it in items if it.problem is not None}


def _require_usable(items: list[sfm.InputImage], what: str) -> list[sfm.InputImage]:
    usable = [it for it in items if it.problem is None]
    if len(usable) < 3:
        raise failure(f"only {len(usable)} of {len(items)} images {what} (at least 3 are needed)", _problems(items))
    return usable


def _apply_priors(items: list[sfm.InputImage], paths: list[Path], priors: Mapping[Any, CameraPrior] | None) -> None:
    """Caller-known camera facts (e.g. EXIF kept by ingest when working copies have none) override the file's."""
    if not priors:
        return
    table = {str(Path(k).resolve()): v for k, v in priors.items()}
    for it, path in zip(items, paths, strict=True):
        prior = table.get(str(path.resolve()))
        if prior is None or it.problem is not None:
            continue
        it.camera_key = (prior.make, prior.model, prior.focal_35mm, (it.width, it.height))
        if prior.focal_35mm:
            it.focal_prior = prior.focal_35mm / 36.0 * max(it.width, it.height)


def _extract(pc: ModuleType, db: Path, stage: Path, usable: list[sfm.InputImage], camera_model: str, token: Any,
             prog: _Progress, use_masks: bool) -> list[list[sfm.InputImage]]:
    groups: dict[tuple[Any, ...], list[sfm.InputImage]] = defaultdict(list)
    for it in usable:
        groups[it.camera_key].append(it)
    sfm.extract_features(pc, db, stage, list(groups.values()), camera_model, token,
                         lambda n: prog(n / len(usable), f"{n}/{len(usable)} images"), use_masks)
    counts = sfm.read_keypoint_counts(pc, db)
    for it in usable:
        n = counts.get(it.name, 0)
        if n < sfm.MIN_FEATURES:
            it.problem = f"too few features ({n} < {sfm.MIN_FEATURES}): textureless, blurry, dark or masked out"
    return list(groups.values())


def _match(pc: ModuleType, db: Path, stage: Path, usable: list[sfm.InputImage], matcher: str, token: Any,
           prog: _Progress) -> tuple[str, str, dict[str, set[str]]]:
    thumbs = np.stack([it.thumb for it in usable if it.thumb is not None])
    kind, reason = pairing.choose_matcher(matcher, thumbs)
    if kind == "exhaustive":
        idx = pairing.exhaustive_pairs(len(usable))
    else:
        desc = sfm.read_descriptors(pc, db, [it.name for it in usable])
        idx = pairing.retrieval_pairs(desc, k=5 if kind == "sequential" else 20)
        if kind == "sequential":
            idx = sorted(set(idx) | set(pairing.sequential_pairs(len(usable))))
    names = [(usable[i].name, usable[j].name) for i, j in idx]
    sfm.match_pairs(pc, db, stage, names, token, lambda n: prog(n / len(names), f"{n}/{len(names)} pairs"))
    return kind, f"{reason}; {len(names)} pairs matched", sfm.verified_neighbours(pc, db)


def _frames_and_outcomes(rec: Any, items: list[sfm.InputImage], recs: list[Any],
                         neighbours: dict[str, set[str]]) -> tuple[list[PosedFrame], list[ImageOutcome]]:
    """Posed frames of the chosen model and one outcome (with a reason when unposed) per input image."""
    by_name = {im.name: im for im in rec.images.values() if im.has_pose}
    other = {im.name: len(r.images) for r in recs[1:] for im in r.images.values() if im.has_pose}
    frames, outcomes = [], []
    for it in items:
        im = by_name.get(it.name)
        if im is None:
            outcomes.append(ImageOutcome(it.name, str(it.path), False, _unregistered_reason(it, other, neighbours)))
            continue
        cam = rec.cameras[im.camera_id]
        cfw = im.cam_from_world()
        c2w = c2w_from_world_to_cam(cfw.rotation.matrix(), np.asarray(cfw.translation))
        intr = intrinsics_from_colmap(cam.model.name, cam.width, cam.height, list(cam.params))
        frames.append(PosedFrame(it.path, c2w, intr, int(im.camera_id)))
        err, nobs = _image_error(rec, im, cam, cfw)
        outcomes.append(ImageOutcome(it.name, str(it.path), True, None, err, nobs))
    return frames, outcomes


def _unregistered_reason(it: sfm.InputImage, other: dict[str, int], neighbours: dict[str, set[str]]) -> str:
    if it.problem is not None:
        return it.problem
    if it.name in other:
        return f"registered only in a separate, smaller model ({other[it.name]} images): no link to the main scene"
    n = len(neighbours.get(it.name, ()))
    return f"overlaps {n} image(s) but could not be registered (too few 2D-3D inliers or too little parallax)"


def _image_error(rec: Any, im: Any, cam: Any, cfw: Any) -> tuple[float | None, int]:
    """Mean reprojection error (px) over one image's triangulated observations, and their count."""
    obs = [(p.xy, rec.points3D[p.point3D_id].xyz) for p in im.points2D if p.has_point3D()]
    if not obs:
        return None, 0
    xy = np.array([o[0] for o in obs])
    xyz = np.array([o[1] for o in obs]) @ cfw.rotation.matrix().T + np.asarray(cfw.translation)
    proj = np.asarray(cam.img_from_cam(xyz))
    return float(np.linalg.norm(proj - xy, axis=1).mean()), len(obs)


def _points(rec: Any) -> tuple[np.ndarray, np.ndarray]:
    pts = list(rec.points3D.values())
    xyz = np.array([p.xyz for p in pts], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in pts], dtype=np.uint8).reshape(-1, 3)
    return xyz, rgb


def _collapsed(rec: Any) -> bool:
    """A degenerate global-positioning result: most camera centres near one point, a few far away.

    Seen on a 20-view synthetic ring with sequential pairs (median/max spread ~0.01; healthy
    captures, object or forward-facing, are above ~0.3).
    """
    centres = np.array([im.projection_center() for im in rec.images.values() if im.has_pose])
    spread = np.linalg.norm(centres - np.median(centres, axis=0), axis=1)
    return bool(spread.max() > 0 and np.median(spread) / spread.max() < 0.05)


def _map(pc: ModuleType, mapper: str, db: Path, stage: Path, token: Any, prog: _Progress,
         usable: list[sfm.InputImage], items: list[sfm.InputImage], neighbours: dict[str, set[str]],
         note: list[str]) -> list[Any]:
    """Run the mapper; fail (listing every image and why) unless the largest model has 3+ images.

    ``note[0]`` receives a remark for the report when global mapping had to fall back to incremental.
    """
    count = [0]

    def on_image() -> None:
        count[0] += 1
        prog(count[0] / len(usable), f"{count[0]}/{len(usable)} images registered")

    recs = sfm.run_mapper(pc, mapper, db, stage, token, on_image)
    sfm.check_stop(prog.should_stop, "map")
    if mapper == "global" and recs and _collapsed(recs[0]):
        prog(0.5, "global mapping collapsed: running incremental mapping")
        recs = sfm.run_mapper(pc, "incremental", db, stage, token, on_image)
        note[0] = "global mapping collapsed (cameras bunched up with outliers far away); fell back to incremental"
    if not recs or recs[0].num_reg_images() < 3:
        got = recs[0].num_reg_images() if recs else 0
        others = {im.name: len(r.images) for r in recs for im in r.images.values() if im.has_pose}
        raise failure(f"mapping registered {got} images (at least 3 are needed): the images overlap too little "
                      "or show too little parallax",
                      {it.name: _unregistered_reason(it, others, neighbours) for it in items})
    return recs


def _report(out: Path, rec: Any, recs: list[Any], outcomes: list[ImageOutcome], frames: list[PosedFrame],
            matcher: tuple[str, str], mapper: tuple[str, str]) -> PoseReport:
    cameras = [{"camera_id": int(cid), "model": cam.model.name, "width": cam.width, "height": cam.height,
                "params": [float(v) for v in cam.params], "images": sum(1 for f in frames if f.camera_id == cid)}
               for cid, cam in rec.cameras.items()]
    return PoseReport(
        source="colmap", out_dir=str(out), images=outcomes, matcher=matcher[0], matcher_reason=matcher[1],
        mapper=mapper[0], mapper_reason=mapper[1], num_models=len(recs), num_points3D=rec.num_points3D(),
        mean_reprojection_error=float(rec.compute_mean_reprojection_error()),
        mean_track_length=float(rec.compute_mean_track_length()), cameras=cameras)


def estimate_poses(image_paths: Sequence[str | PathLike[str]], out_dir: str | PathLike[str], *,
                   matcher: str = "auto", mapper: str = "auto", masks: bool = True,
                   camera_model: str = "SIMPLE_RADIAL", progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None,
                   camera_priors: Mapping[Any, CameraPrior] | None = None,
                   threads: int | None = None) -> PoseReport:
    """Estimate camera poses for ``image_paths`` and write transforms.json, points3D.ply, report.json to ``out_dir``.

    ``masks``: use alpha channels as feature masks. ``camera_priors``: {image path: CameraPrior} for
    images whose files lost their EXIF; images with the same make/model/focal and size share intrinsics.
    Raises ValidationError (listing images and reasons) when fewer than 3 images can be posed,
    CancelledError when ``should_stop()`` turns true. ``threads``: COLMAP's threads (default one per
    core); with 1 a run is repeatable, with more, feature order and hence the result vary slightly between
    runs (global mapping on small sets can then land a few degrees off).
    """
    paths = [Path(p) for p in image_paths]
    _check_args(paths, matcher, mapper, camera_model)
    if threads is not None and threads < 1:
        raise ValidationError(f"threads must be at least 1, got {threads}")
    out = Path(out_dir)
    prog = _Progress(progress, should_stop)
    pc = sfm.load_pycolmap()
    token = pc.CancellationToken()
    with sfm.use_threads(threads), staging_dir(out) as stage, sfm.stop_watcher(token, should_stop):
        prog.start("check")
        items = sfm.inspect_images(paths, stage, use_masks=masks)
        _apply_priors(items, paths, camera_priors)
        usable = _require_usable(items, "are readable and not blank")
        db = stage / "database.db"
        prog.start("extract")
        _extract(pc, db, stage, usable, camera_model, token, prog, masks)
        usable = _require_usable(usable, "have enough features")
        prog.start("match")
        kind, match_reason, neighbours = _match(pc, db, stage, usable, matcher, token, prog)
        for it in usable:
            if not neighbours.get(it.name):
                it.problem = "no overlap: shares no geometrically verified matches with any other image"
        usable = _require_usable(usable, "overlap with another image")
        prog.start("map")
        mapper_kind, mapper_reason = choose_mapper(mapper, len(usable))
        note = [""]
        recs = _map(pc, mapper_kind, db, stage, token, prog, usable, items, neighbours, note)
        if note[0]:
            mapper_kind, mapper_reason = "incremental", f"{mapper_reason}; {note[0]}"
        rec = recs[0]
        frames, outcomes = _frames_and_outcomes(rec, items, recs, neighbours)
        prog.start("normalize")
        xyz, rgb = _points(rec)
        norm = normalize_scene(np.stack([f.c2w for f in frames]), xyz)
        for fr, c2w in zip(frames, norm.apply_c2w(np.stack([f.c2w for f in frames])), strict=False):
            fr.c2w = c2w
        prog.start("write")
        report = _report(out, rec, recs, outcomes, frames, (kind, match_reason), (mapper_kind, mapper_reason))
        report.normalization, report.timings = norm.to_dict(), prog.timings
        prog.done()
        write_outputs(stage, out, frames, norm, report, (norm.apply_points(xyz), rgb))
    return report
