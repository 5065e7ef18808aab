"""Staging of chunked uploads: files named from positions under <home>/staging, limits, sweeping."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.widgets.staging import begin_batch, staging_root, sweep_stale

LIMITS = {"max_file_bytes": 100, "max_batch_bytes": 150}


def test_client_names_never_become_paths(tmp_path: Path) -> None:
    batch = begin_batch(tmp_path, [{"fid": "a", "name": "../../etc/passwd", "size": 3},
                                   {"fid": "b", "name": "x\x00y.png", "size": 0}], **LIMITS)
    assert [f.path.name for f in batch.files.values()] == ["0.part", "1.part"]
    assert batch.folder.parent == staging_root(tmp_path) and batch.folder.name.startswith("upl_")
    batch.append("a", 0, b"abc")
    assert batch.ready_files() == [("a", "../../etc/passwd", batch.folder / "0.part"),
                                   ("b", "x\x00y.png", batch.folder / "1.part")]
    assert not (tmp_path.parent / "etc").exists()
    batch.discard()
    assert not batch.folder.exists()


def test_chunk_past_declared_size_rejects_the_file(tmp_path: Path) -> None:
    batch = begin_batch(tmp_path, [{"fid": "a", "name": "a.png", "size": 4}], **LIMITS)
    batch.append("a", 0, b"abc")
    assert batch.append("a", 3, b"de") == 3
    assert batch.ready_files() == [] and batch.incomplete()[0][:2] == ("a", "a.png")
    assert "transfer broke off" in batch.incomplete()[0][2]
    assert not (batch.folder / "0.part").exists()


def test_limits(tmp_path: Path) -> None:
    batch = begin_batch(tmp_path, [{"fid": "a", "name": "big.png", "size": 101}], **LIMITS)
    assert "limit per file" in (batch.files["a"].rejected or "")
    with pytest.raises(ValidationError, match="at most"):
        begin_batch(tmp_path, [{"fid": f"f{i}", "name": "a", "size": 60} for i in range(3)], **LIMITS)
    with pytest.raises(ValidationError, match="appears twice"):
        begin_batch(tmp_path, [{"fid": "a", "name": "a", "size": 1}, {"fid": "a", "name": "b", "size": 1}], **LIMITS)
    with pytest.raises(ValidationError, match="Malformed file name or size"):
        begin_batch(tmp_path, [{"fid": "a", "name": "a", "size": -1}], **LIMITS)
    assert [p for p in staging_root(tmp_path).iterdir() if p != batch.folder] == []  # refused batches leave nothing


def test_sweep_removes_only_stale_folders(tmp_path: Path) -> None:
    old = begin_batch(tmp_path, [{"fid": "a", "name": "a", "size": 1}], **LIMITS)
    fresh = begin_batch(tmp_path, [{"fid": "a", "name": "a", "size": 1}], **LIMITS)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old.folder, (two_days_ago, two_days_ago))
    assert sweep_stale(tmp_path) == 1
    assert not old.folder.exists() and fresh.folder.exists()
