"""Import existing poses ("Manual Poses" / "Skip Pose Estimation"): read, validate, resolve images, normalise, write.

Frames are matched to images by relative path (with or without extension), then file name, then file stem (Blender frames name
``./train/r_0`` without extension). Frames naming a missing image are an error; images without a
frame are listed in the report and simply not used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nerf_widgets.core.errors import NotFoundError, ValidationError
from nerf_widgets.poses import formats
from nerf_widgets.poses.geometry import normalize_scene
from nerf_widgets.poses.types import ImageOutcome, Intrinsics, PosedFrame, PoseProgress, PoseReport, ProgressFn
from nerf_widgets.poses.writer import staging_dir, write_outputs

__all__ = ["IMAGE_SUFFIXES", "ImageSet", "import_poses", "load_report"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif"}
Images = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None


class ImageSet:
    """The images frames may name: a folder (searched recursively) or a mapping name -> path."""

    def __init__(self, images: Images, default_dir: Path) -> None:
        if isinstance(images, Mapping):
            self.by_rel = {str(k).replace("\\", "/"): Path(v) for k, v in images.items()}
        else:
            root = Path(images) if images is not None else default_dir
            if not root.is_dir():
                raise NotFoundError(f"image folder {root} does not exist")
            files = [p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
            self.by_rel = {p.relative_to(root).as_posix(): p for p in files}
        self.by_name = _unique({Path(k).name: v for k, v in self.by_rel.items()}, key=lambda k: Path(k).name,
                               keys=self.by_rel)
        self.by_rel_stem = {str(Path(k).with_suffix("")): v for k, v in self.by_rel.items()}
        self.by_stem = _unique({Path(k).stem: v for k, v in self.by_rel.items()}, key=lambda k: Path(k).stem,
                               keys=self.by_rel)

    def resolve(self, name: str) -> Path | None:
        """The image a frame's ``file_path`` names, or None."""
        rel = name.replace("\\", "/").removeprefix("./")
        tables = ((self.by_rel, rel), (self.by_rel_stem, rel), (self.by_name, Path(rel).name),
                  (self.by_stem, Path(rel).stem))
        for table, key in tables:
            if key in table:
                return table[key]
        return None

    def names(self) -> list[str]:
        return sorted(self.by_rel)


def _unique(table: dict[str, Path], key: object, keys: Mapping[str, Path]) -> dict[str, Path]:
    """Drop entries whose key several images share (ambiguous), keep the rest."""
    counts: dict[str, int] = {}
    for k in keys:
        kk = key(k)  # type: ignore[operator]
        counts[kk] = counts.get(kk, 0) + 1
    return {k: v for k, v in table.items() if counts.get(k, 0) == 1}


def _image_size(path: Path | None) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    if path is None or not Path(path).is_file():
        return None
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError):
        return None


def _fit_to_image(intr: Intrinsics, size: tuple[int, int] | None) -> Intrinsics:
    """Rescale intrinsics given for another resolution (e.g. full-size photos vs working copies)."""
    if size is None or (intr.w, intr.h) == size:
        return intr
    sx, sy = size[0] / intr.w, size[1] / intr.h
    if abs(sx - sy) > 0.01 * max(sx, sy):
        raise ValueError(f"image is {size[0]}x{size[1]} but the poses say {intr.w}x{intr.h} (different aspect)")
    return Intrinsics(w=size[0], h=size[1], fl_x=intr.fl_x * sx, fl_y=intr.fl_y * sy, cx=intr.cx * sx,
                      cy=intr.cy * sy, k1=intr.k1, k2=intr.k2, p1=intr.p1, p2=intr.p2)


def _read(fmt: str, path: Path, images: ImageSet) -> formats.RawScene:
    def size_of(name: str) -> tuple[int, int] | None:
        return _image_size(images.resolve(name))

    if fmt == "colmap":
        return formats.read_colmap(path)
    if fmt == "llff":
        return formats.read_llff(path, images.names(), size_of)
    return formats.read_transforms(path, size_of, fmt)


def _posed_frames(scene: formats.RawScene, images: ImageSet) -> tuple[list[PosedFrame], list[str]]:
    """Resolve each frame to its image (problems collected, not raised one by one)."""
    frames, problems, cams = [], list(scene.problems), {}  # type: ignore[var-annotated]
    seen: dict[Path, str] = {}
    for fr in scene.frames:
        path = images.resolve(fr.name)
        if path is None or not Path(path).is_file():
            problems.append(f"frame {fr.name!r}: names an image that is not in the image set")
            continue
        if path in seen:
            problems.append(f"frame {fr.name!r}: same image as frame {seen[path]!r}")
            continue
        seen[path] = fr.name
        try:
            intr = _fit_to_image(fr.intrinsics, _image_size(path))
        except ValueError as err:
            problems.append(f"frame {fr.name!r}: {err}")
            continue
        frames.append(PosedFrame(Path(path), fr.c2w, intr, cams.setdefault(intr, len(cams) + 1)))
    return frames, problems


def _raise_problems(source: Path, problems: list[str]) -> None:
    shown = problems[:25] + ([f"... and {len(problems) - 25} more"] if len(problems) > 25 else [])
    raise ValidationError(f"{source.name}: {len(problems)} problem(s) in the poses:\n  " + "\n  ".join(shown),
                          problems=problems)


def import_poses(source: str | os.PathLike[str], images: Images, out_dir: str | os.PathLike[str], *,
                 normalize: bool = True, progress: ProgressFn | None = None) -> PoseReport:
    """Validate poses in ``source`` (file or folder, format detected) against ``images`` and write them to ``out_dir``.

    ``images``: folder of images, mapping {name in the poses file -> image path}, or None for the poses
    file's own folder. Writes transforms.json (normalised unless ``normalize=False``), report.json and,
    for COLMAP models, points3D.ply. Raises ValidationError listing every problem; writes nothing then.
    """
    source = Path(source)
    fmt, path = formats.detect_format(source)
    image_set = ImageSet(images, source if source.is_dir() else source.parent)
    _emit(progress, "read", 0.0)
    scene = _read(fmt, path, image_set)
    _emit(progress, "validate", 0.3)
    frames, problems = _posed_frames(scene, image_set)
    if problems:
        _raise_problems(source, problems)
    if len(frames) < 1:
        raise ValidationError(f"{source.name}: no frames with poses")
    c2w = np.stack([f.c2w for f in frames])
    points = scene.points
    norm = normalize_scene(c2w, points[0] if points else None) if normalize else None
    if norm is not None:
        for fr, m in zip(frames, norm.apply_c2w(c2w), strict=False):
            fr.c2w = m
        points = (norm.apply_points(points[0]), points[1]) if points else None
    used = {f.path for f in frames}
    outcomes = [ImageOutcome(Path(f.path).name, str(f.path), True) for f in frames] + [
        ImageOutcome(Path(p).name, str(p), False, "no frame in the poses file (not used)")
        for p in sorted(set(image_set.by_rel.values()) - used)]
    report = PoseReport(source=f"import:{fmt}", out_dir=str(out_dir), images=outcomes,
                        num_points3D=len(points[0]) if points else 0,
                        cameras=[{"camera_id": i, **c.to_dict(), "images": sum(f.intrinsics == c for f in frames)}
                                 for c, i in {f.intrinsics: f.camera_id for f in frames}.items()],
                        normalization=norm.to_dict() if norm is not None else {})
    _emit(progress, "write", 0.8)
    with staging_dir(Path(out_dir)) as stage:
        write_outputs(stage, Path(out_dir), frames, norm, report, points)
    _emit(progress, "write", 1.0)
    return report


def _emit(progress: ProgressFn | None, stage: str, overall: float) -> None:
    if progress is not None:
        progress(PoseProgress(stage, 1.0 if overall >= 1.0 else 0.0, overall))


def load_report(out_dir: str | os.PathLike[str]) -> PoseReport:
    """Read report.json written by :func:`import_poses` or ``estimate_poses``."""
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise NotFoundError(f"no pose report in {out_dir}")
    return PoseReport.from_dict(json.loads(path.read_text()))
