"""One input file through the stages: name -> size -> type -> hash/duplicate -> decode -> outputs -> commit.

Every stage either passes or raises ``Rejection``; outputs are staged under temp names and published
(renamed) just before the database row is committed, and removed again if the commit fails.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from nerf_widgets.core.errors import DuplicateImageError, NerfWidgetsError, ValidationError
from nerf_widgets.core.ids import new_id
from nerf_widgets.core.paths import safe_join
from nerf_widgets.core.settings import Settings
from nerf_widgets.domain.names import clean_file_name
from nerf_widgets.ingest.decode import decode
from nerf_widgets.ingest.detect import HEAD_BYTES, Detected, detect
from nerf_widgets.ingest.files import Staged, copy_stream, resized, save_thumbnail, save_working
from nerf_widgets.ingest.metadata import CameraInfo, camera_info, sharpness
from nerf_widgets.ingest.results import Rejection, UploadResult
from nerf_widgets.ingest.sources import Source
from nerf_widgets.ingest.video import sharpest_frames

log = logging.getLogger(__name__)
NO_CAMERA = CameraInfo(None, None, None, None)

Commit = Callable[[dict[str, Any]], Any]  # inserts a row; raises DuplicateImageError / NerfWidgetsError


@dataclass
class IngestContext:
    """What every worker needs; ``claims`` de-duplicates identical files within one batch."""

    settings: Settings
    project_dir: Path
    commit: Commit
    known_hash: Callable[[str], str | None]
    claims: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_duplicate(self, sha: str, name: str) -> UploadResult | None:
        existing = self.known_hash(sha)
        if existing is not None:
            return UploadResult(name, "duplicate", "The project already holds this image.", duplicate_of=existing)
        with self.lock:
            first = self.claims.get(sha)
            if first is None:
                self.claims[sha] = name
                return None
        return UploadResult(name, "duplicate", f"Same content as {first!r} in this upload.")

    def out(self, folder: str, file_name: str) -> Path:
        return safe_join(self.project_dir, folder, file_name)


@dataclass
class Prepared:
    """A decoded, upright image and what the row needs beyond the pixels."""

    name: str
    image: Image.Image  # RGB or RGBA, 8 bit
    sha256: str
    fmt: str
    original_ext: str
    size_bytes: int
    order: int  # index of the input file in its batch
    camera: CameraInfo = NO_CAMERA
    source_id: str | None = None
    frame_time: float | None = None
    reusable: bool = False  # the original file can serve as the working copy if no resize is needed
    full_size: tuple[int, int] | None = None  # upright (w, h) px at full resolution, if ``image`` was decoded smaller


def display_name(raw: str) -> str:
    """A printable stand-in for names that were refused (control characters shown escaped)."""
    return raw.encode("unicode_escape").decode("ascii") if any(ord(c) < 32 or ord(c) == 127 for c in raw) else raw


def process_source(src: Source, ctx: IngestContext, order: int = 0) -> list[UploadResult]:
    """Run one input file; returns one result per stored image (several for a video) or one rejection.

    ``order`` is the file's index in the batch, passed to ``commit`` so images keep the input order.
    """
    try:
        name = clean_file_name(src.name)
    except ValidationError as err:
        return [UploadResult(display_name(src.name), "rejected", str(err))]
    try:
        return _process(src, name, ctx, order)
    except Rejection as rej:
        return [UploadResult(name, "rejected", rej.reason)]
    except NerfWidgetsError as err:
        return [UploadResult(name, "rejected", str(err))]
    except OSError as err:
        return [UploadResult(name, "rejected", f"The file could not be read ({err.strerror or err}).")]
    except Exception as err:  # a bug: keep the batch going, log the traceback
        log.exception("internal error while ingesting %r", name)
        return [UploadResult(name, "rejected", f"Internal error while processing this file ({type(err).__name__}).")]


def _process(src: Source, name: str, ctx: IngestContext, order: int) -> list[UploadResult]:
    if src.refused is not None:
        raise Rejection(src.refused)
    size, limit = src.size(), ctx.settings.max_file_bytes
    if size < 0:
        raise Rejection("The file does not exist or cannot be read.")
    if size > limit:
        raise Rejection(f"The file is {size / 2**20:.1f} MiB; the limit per file is {limit / 2**20:.1f} MiB.")
    with src.open() as fh:
        det = detect(fh.read(HEAD_BYTES))
        fh.seek(0)
        if det.kind == "video":
            return _process_video(src, name, det, ctx, order)
        data = fh.read()
    sha = hashlib.sha256(data).hexdigest()
    dup = ctx.check_duplicate(sha, name)
    if dup is not None:
        return [dup]
    decoded = decode(data, det.format, ctx.settings.max_pixels, ctx.settings.working_long_side)
    prep = Prepared(name, decoded.image, sha, det.format, det.ext, len(data), order, camera_info(decoded.exif),
                    reusable=decoded.pristine and det.format in ("jpeg", "png"), full_size=decoded.full_size)
    return [store_prepared(prep, ctx, original=data)]


def check_min_size(prep: Prepared, min_side: int) -> None:
    """Refuse an image (or a video's frames) too small to reconstruct from, before anything is written."""
    width, height = prep.full_size or prep.image.size
    if min(width, height) < min_side:
        raise Rejection(f"The image is {width} x {height} px; at least {min_side} px on the short side are needed "
                        "to estimate poses and train from it.")


def store_prepared(prep: Prepared, ctx: IngestContext, original: bytes | None) -> UploadResult:
    """Check the size, write working copy, thumbnail (and original), publish them, then commit the row."""
    s = ctx.settings
    check_min_size(prep, s.min_image_side)
    image_id = new_id("img")
    work = resized(prep.image, s.working_long_side)
    score = sharpness(work)
    working_ext = "png" if work.mode == "RGBA" else "jpg"
    staged = Staged()
    try:
        _write_outputs(staged, prep, ctx, image_id, work, working_ext, original)
        staged.publish()
        values = _row_values(prep, image_id, work, working_ext, score, s.blur_threshold)
        ctx.commit(values)
    except DuplicateImageError as dup:
        staged.discard()
        return UploadResult(prep.name, "duplicate", "The project already holds this image.",
                            duplicate_of=dup.existing_id)
    except OSError as err:
        staged.discard()
        raise Rejection(f"The image could not be saved in the studio home ({err.strerror or err}).") from err
    except BaseException:
        staged.discard()
        raise
    return UploadResult(prep.name, "accepted", None, image_id=image_id, blurry=bool(values["blurry"]),
                        sharpness=score, has_alpha=work.mode == "RGBA", width=work.width, height=work.height,
                        frame_time=prep.frame_time)


def _write_outputs(staged: Staged, prep: Prepared, ctx: IngestContext, image_id: str, work: Image.Image,
                   working_ext: str, original: bytes | None) -> None:
    """Working copy, thumbnail and original under temp names (``staged`` publishes or discards them)."""
    working_path = staged.temp_for(ctx.out("images", f"{image_id}.{working_ext}"))
    if original is not None and prep.reusable and work is prep.image and prep.original_ext == working_ext:
        working_path.write_bytes(original)  # same pixels, same format: no re-encoding (and no JPEG loss)
    else:
        save_working(work, working_path)
    save_thumbnail(work, staged.temp_for(ctx.out("thumbs", f"{image_id}.jpg")), ctx.settings.thumbnail_size)
    if original is not None:
        staged.temp_for(ctx.out("originals", f"{image_id}.{prep.original_ext}")).write_bytes(original)


def _row_values(prep: Prepared, image_id: str, work: Image.Image, working_ext: str, score: float,
                blur_threshold: float) -> dict[str, Any]:
    return {
        "id": image_id, "original_name": prep.name, "source_id": prep.source_id, "format": prep.fmt,
        "original_ext": prep.original_ext, "working_ext": working_ext, "size_bytes": prep.size_bytes,
        "orig_width": (prep.full_size or prep.image.size)[0], "orig_height": (prep.full_size or prep.image.size)[1],
        "width": work.width,
        "height": work.height, "has_alpha": int(work.mode == "RGBA"), "focal_mm": prep.camera.focal_mm,
        "focal_35mm": prep.camera.focal_35mm, "camera_make": prep.camera.make, "camera_model": prep.camera.model,
        "sha256": prep.sha256, "sharpness": score, "blurry": int(score < blur_threshold),
        "frame_time": prep.frame_time, "order": prep.order,
    }


def _process_video(src: Source, name: str, det: Detected, ctx: IngestContext, order: int) -> list[UploadResult]:
    """Keep the video once as ``originals/<vid_id>.<ext>``; each kept frame becomes an image row."""
    video_id = new_id("vid")
    original = ctx.out("originals", f"{video_id}.{det.ext}")
    staged = Staged()
    with src.open() as fh:
        copy_stream(fh, staged.temp_for(original))
    staged.publish()  # frames' rows reference it, so it must exist before the first commit
    results: list[UploadResult] = []
    try:
        with src.open() as fh:
            for t, frame in sharpest_frames(fh, fps=ctx.settings.video_fps, max_pixels=ctx.settings.max_pixels):
                prep = _frame(name, det, t, frame, video_id, src.size(), order)
                dup = ctx.check_duplicate(prep.sha256, prep.name)
                results.append(dup or store_prepared(prep, ctx, original=None))
    except Rejection as rej:
        results.append(UploadResult(name, "rejected", rej.reason if not results else
                                    f"{rej.reason} Frames before the damage were kept."))
    finally:
        if not any(r.status == "accepted" for r in results):
            staged.discard()
    if not results:
        results.append(UploadResult(name, "rejected", "No frame could be decoded from the video."))
    return results


def _frame(name: str, det: Detected, t: float, frame: Image.Image, video_id: str, size: int, order: int) -> Prepared:
    sha = hashlib.sha256(frame.tobytes()).hexdigest()
    return Prepared(f"{name} @ {t:.2f} s", frame, sha, det.format, det.ext, size, order, source_id=video_id,
                    frame_time=t)


__all__ = ["IngestContext", "Prepared", "check_min_size", "display_name", "process_source", "store_prepared"]
