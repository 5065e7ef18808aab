"""Video -> frames: decode with PyAV and keep the sharpest frame of each ``1 / fps`` second window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import numpy as np
from PIL import Image

from nerf_widgets.ingest.decode import pixel_limit_reason
from nerf_widgets.ingest.results import Rejection

SCORE_LONG_SIDE = 480  # px; frames are compared on a small grey copy (fast, and noise-robust)


def _score(frame: Any) -> float:
    """Variance of the Laplacian of a downscaled grey copy (comparable within one video)."""
    scale = min(1.0, SCORE_LONG_SIDE / max(frame.width, frame.height))
    w, h = max(3, int(frame.width * scale)), max(3, int(frame.height * scale))
    g = frame.reformat(width=w, height=h, format="gray").to_ndarray().astype(np.float32)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def _why(err: Exception) -> str:
    return str(getattr(err, "strerror", None) or err)


def _open(fh: IO[bytes], max_pixels: int) -> tuple[Any, Any]:
    import av

    try:
        container = av.open(fh, mode="r")
    except (av.FFmpegError, OSError, ValueError) as err:
        raise Rejection(f"The video is corrupt or unreadable ({_why(err)}).") from None
    if not container.streams.video:
        container.close()
        raise Rejection("The file has no video stream.")
    stream = container.streams.video[0]
    reason = pixel_limit_reason(stream.codec_context.width, stream.codec_context.height, max_pixels)
    if reason:
        container.close()
        raise Rejection(reason.replace("image", "video"))
    stream.thread_type = "AUTO"
    return container, stream


def sharpest_frames(fh: IO[bytes], *, fps: float, max_pixels: int) -> Iterator[tuple[float, Image.Image]]:
    """Yield ``(time_s, RGB image)`` for the sharpest frame of each window of ``1 / fps`` seconds."""
    import av

    if fps <= 0:
        raise Rejection(f"video_fps must be positive, got {fps}.")
    container, stream = _open(fh, max_pixels)
    rate = float(stream.average_rate or 25)
    best: tuple[float, float, Any] | None = None  # (score, time, frame)
    window = None
    try:
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / rate
            w = int(t * fps)
            if best is not None and w != window:
                yield best[1], best[2].to_image()
                best = None
            window = w
            score = _score(frame)
            if best is None or score > best[0]:
                best = (score, t, frame)
    except av.FFmpegError as err:
        raise Rejection(f"The video is corrupt or truncated ({_why(err)}).") from None
    finally:
        container.close()
    if best is not None:
        yield best[1], best[2].to_image()


__all__ = ["sharpest_frames"]
