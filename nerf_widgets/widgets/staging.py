"""Reassembles files sent by the browser in chunks into staging files under the studio home.

Why: a photo set is far larger than one comm message may be, and holding it in memory (what
ipywidgets' ``FileUpload`` does) does not scale. The browser sends each file as ordered binary
chunks; each chunk is appended to ``<home>/staging/<upl_id>/<n>.part`` (names built from ids, never
from the client's file name, which is kept as metadata only). The folder is removed when the batch
is committed, cancelled or fails, and stale folders from dead kernels are swept on start.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.core.ids import new_id
from nerf_widgets.core.paths import safe_join

STAGING_DIR = "staging"
STALE_AFTER_S = 24 * 3600.0
_CLIENT_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class StagedFile:
    """One file being received: declared ``size`` (bytes) versus bytes ``received`` so far."""

    name: str  # client file name: metadata only
    size: int
    path: Path
    received: int = 0
    rejected: str | None = None  # reason, when refused before or during transfer

    @property
    def complete(self) -> bool:
        return self.rejected is None and self.received == self.size


@dataclass
class StagedBatch:
    """The files of one browser selection, keyed by the browser's file key (``fid``)."""

    folder: Path
    files: dict[str, StagedFile] = field(default_factory=dict)

    def append(self, fid: str, offset: int, data: memoryview | bytes) -> int:
        """Append a chunk at ``offset``; returns bytes received. Chunks must arrive in order."""
        staged = self.files.get(fid)
        if staged is None:
            raise ValidationError(f"Unknown file key {fid!r} in this upload.")
        if staged.rejected is not None:
            return staged.received
        if offset != staged.received or staged.received + len(data) > staged.size:
            self.reject(fid, f"the transfer broke off (chunk at byte {offset}, expected {staged.received})")
            return staged.received
        with open(staged.path, "ab") as fh:
            fh.write(data)
        staged.received += len(data)
        return staged.received

    def reject(self, fid: str, reason: str) -> None:
        staged = self.files[fid]
        staged.rejected = reason
        staged.path.unlink(missing_ok=True)

    def ready_files(self) -> list[tuple[str, str, Path]]:
        """``(fid, client name, staged path)`` of the complete files, in selection order."""
        return [(fid, f.name, f.path) for fid, f in self.files.items() if f.complete]

    def incomplete(self) -> list[tuple[str, str, str]]:
        """``(fid, client name, reason)`` for files that did not arrive whole."""
        return [(fid, f.name, f.rejected or f"only {f.received} of {f.size} bytes arrived")
                for fid, f in self.files.items() if not f.complete]

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def staging_root(home: Path) -> Path:
    return safe_join(home, STAGING_DIR)


def begin_batch(home: Path, files: Any, *, max_file_bytes: int, max_batch_bytes: int) -> StagedBatch:
    """Create the staging folder for ``files`` (``[{fid, name, size}]``); oversize files are refused up front."""
    if not isinstance(files, list) or not files:
        raise ValidationError("The upload lists no files.")
    declared = [_check_entry(entry) for entry in files]
    total = sum(size for _fid, _name, size in declared if size <= max_file_bytes)
    if total > max_batch_bytes:
        raise ValidationError(
            f"The selection holds {total / 2**20:.1f} MiB; one upload may hold at most {max_batch_bytes / 2**20:.0f} MiB. "
            "Upload it in parts."
        )
    folder = safe_join(staging_root(home), new_id("upl"))
    folder.mkdir(parents=True)
    batch = StagedBatch(folder)
    for n, (fid, name, size) in enumerate(declared):
        if fid in batch.files:
            batch.discard()
            raise ValidationError(f"File key {fid!r} appears twice in one upload.")
        batch.files[fid] = StagedFile(name=name, size=size, path=folder / f"{n}.part")
        batch.files[fid].path.touch()
        if size > max_file_bytes:
            batch.reject(fid, f"{name} is {size / 2**20:.1f} MiB; the limit per file is {max_file_bytes / 2**20:.0f} MiB")
    return batch


def _check_entry(entry: Any) -> tuple[str, str, int]:
    if not isinstance(entry, dict):
        raise ValidationError("Malformed upload entry.")
    fid, name, size = entry.get("fid"), entry.get("name"), entry.get("size")
    if not isinstance(fid, str) or not _CLIENT_KEY.fullmatch(fid):
        raise ValidationError("Malformed file key in the upload.")
    if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValidationError("Malformed file name or size in the upload.")
    return fid, name, size


def sweep_stale(home: Path, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove staging folders left by kernels that died mid-upload; returns how many were removed."""
    root = staging_root(home)
    if not root.is_dir():
        return 0
    cutoff, removed = time.time() - older_than_s, 0
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


__all__ = ["StagedBatch", "StagedFile", "begin_batch", "staging_root", "sweep_stale"]
