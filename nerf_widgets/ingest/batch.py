"""Batch ingest on a thread pool (Pillow and PyAV release the GIL while decoding and encoding)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.core.settings import Settings
from nerf_widgets.ingest.pipeline import Commit, IngestContext, process_source
from nerf_widgets.ingest.results import UploadResult
from nerf_widgets.ingest.sources import Source, collect_sources

Progress = Callable[[int, int, str], None]


def check_batch_size(sources: list[Source], settings: Settings) -> None:
    """Refuse the whole call (before writing anything) when it exceeds ``max_batch_bytes``."""
    total = sum(max(src.size(), 0) for src in sources)
    if total > settings.max_batch_bytes:
        raise ValidationError(
            f"This upload is {total / 2**20:.1f} MiB; the limit per upload is {settings.max_batch_bytes / 2**20:.1f} "
            "MiB. Upload the files in smaller groups.",
            total_bytes=total,
        )


def worker_count(settings: Settings, jobs: int) -> int:
    wanted = settings.ingest_workers or os.cpu_count() or 1
    return max(1, min(wanted, jobs))


def ingest_batch(
    items: Any,
    *,
    settings: Settings,
    project_dir: Path,
    commit: Commit,
    known_hash: Callable[[str], str | None],
    progress: Progress | None = None,
) -> list[UploadResult]:
    """Ingest every source; results come back in input order (a video's frames in time order), each with the
    index of its input file in ``source``.

    ``commit(values)`` inserts one image row (called from worker threads, after the files exist).
    ``progress(done, total, name)`` runs in the calling thread after each input file.
    """
    sources = collect_sources(items)
    check_batch_size(sources, settings)
    ctx = IngestContext(settings, Path(project_dir), commit, known_hash)
    per_source: list[list[UploadResult]] = [[] for _ in sources]
    if not sources:
        return []
    with ThreadPoolExecutor(max_workers=worker_count(settings, len(sources)), thread_name_prefix="ingest") as pool:
        futures = {pool.submit(process_source, src, ctx, i): i for i, src in enumerate(sources)}
        try:
            for done, fut in enumerate(as_completed(futures), start=1):
                i = futures[fut]
                per_source[i] = [replace(r, source=i) for r in fut.result()]
                if progress is not None:
                    progress(done, len(sources), sources[i].name)
        except BaseException:  # e.g. KeyboardInterrupt: files not started yet are skipped
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [r for results in per_source for r in results]


__all__ = ["check_batch_size", "ingest_batch"]
