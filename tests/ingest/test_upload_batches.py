"""Batches: folders, progress, duplicates, ordering, lifecycle effects, removal, concurrent uploaders."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from nerf_widgets.core.errors import NotFoundError, StateConflictError
from nerf_widgets.studio import Project, Studio
from tests.ingest.conftest import encode, textured


def photos(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    return [(f"p{i}.jpg", encode(textured(40, 30, seed=seed + i), "JPEG")) for i in range(n)]


def test_folder_is_natural_sorted_non_recursive_and_skips_hidden(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    (folder / "sub").mkdir(parents=True)
    for i, (_, data) in zip([10, 2, 1], photos(3), strict=True):
        (folder / f"r_{i}.jpg").write_bytes(data)
    (folder / "sub" / "deep.jpg").write_bytes(photos(1, seed=50)[0][1])
    (folder / ".hidden.jpg").write_bytes(photos(1, seed=60)[0][1])
    (folder / "notes.txt").write_text("shot on a cloudy day")
    results = project.upload_images(folder)
    assert [(r.name, r.status) for r in results] == [
        ("notes.txt", "rejected"), ("r_1.jpg", "accepted"), ("r_2.jpg", "accepted"), ("r_10.jpg", "accepted")]
    assert [i.original_name for i in project.images()] == ["r_1.jpg", "r_2.jpg", "r_10.jpg"]


def test_progress_is_reported_per_file_in_the_calling_thread(project: Project) -> None:
    calls: list[tuple[int, int, str, str]] = []
    project.upload_images(photos(5), progress=lambda d, t, n: calls.append((d, t, n, threading.current_thread().name)))
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5] and {c[1] for c in calls} == {5}
    assert sorted(c[2] for c in calls) == [f"p{i}.jpg" for i in range(5)]
    assert {c[3] for c in calls} == {threading.current_thread().name}


def test_duplicates_within_a_batch_and_across_batches(project: Project) -> None:
    batch = photos(3)
    first = project.upload_images(batch + [("copy.jpg", batch[0][1])])
    assert [r.status for r in first] == ["accepted"] * 3 + ["duplicate"]
    # depending on timing the copy meets p0 in the batch's claims or already in the database
    assert "p0.jpg" in str(first[3].reason) or first[3].duplicate_of == first[0].image_id
    again = project.upload_images([("again.jpg", batch[1][1])])
    assert again[0].status == "duplicate" and again[0].duplicate_of == first[1].image_id
    assert len(project.images()) == 3
    assert len(list((project.dir / "images").iterdir())) == 3


def test_same_photos_from_two_studios_at_once_are_stored_once(home: Path) -> None:
    s1, s2 = Studio(home), Studio(home)
    p1 = s1.create_project("race")
    p2 = s2.project(p1.id)
    batch = photos(6)
    out: dict[str, list] = {}  # type: ignore[type-arg]
    threads = [threading.Thread(target=lambda k=k, p=p: out.__setitem__(k, p.upload_images(batch)))
               for k, p in (("a", p1), ("b", p2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for k in out for r in out[k])
    assert statuses == ["accepted"] * 6 + ["duplicate"] * 6
    assert len(p1.images()) == 6 and len(list((p1.dir / "images").iterdir())) == 6


def test_upload_lifecycle_and_refusal_while_training(project: Project) -> None:
    project.upload_images(photos(2))
    project.upload_images(photos(1, seed=10))
    assert [h.transition for h in project.history] == ["create", "upload_images", "upload_images"]
    project.transition("skip_pose_estimation", "test")
    project.transition("start_training", "test")
    with pytest.raises(StateConflictError, match="TrainingStarted"):
        project.upload_images(photos(1, seed=20))
    assert len(project.images()) == 3
    with pytest.raises(StateConflictError, match="Cannot images removed: the project is in state Training"):
        project.remove_image(project.images()[0].id)
    assert len(list((project.dir / "images").iterdir())) == 3


def test_a_fully_rejected_batch_changes_nothing(project: Project) -> None:
    project.upload_images([("x.jpg", b"nope")])
    assert project.state == "Created" and [h.transition for h in project.history] == ["create"]


def test_remove_image_deletes_files_and_invalidates_poses(project: Project) -> None:
    a, b = project.upload_images(photos(2))
    project.transition("estimate_poses", "test")
    project.remove_image(a.image_id)
    assert project.state == "ImagesUploaded"
    assert [i.id for i in project.images()] == [b.image_id]
    for sub in ("originals", "images", "thumbs"):
        assert [p.name for p in (project.dir / sub).iterdir()] == [f"{b.image_id}.jpg"]
    with pytest.raises(NotFoundError, match=f"No image with id '{a.image_id}'"):
        project.thumbnail(a.image_id)
    with pytest.raises(NotFoundError, match=f"No image with id '{a.image_id}'"):
        project.remove_image(a.image_id)
    project.remove_image(b.image_id)
    assert project.state == "Created"
    assert [h.transition for h in project.history][-2:] == ["images_removed", "images_cleared"]


def test_temp_files_left_by_a_crash_are_swept_on_the_next_upload(project: Project) -> None:
    stale = project.dir / "images" / ".img_0123456789abcdef.jpg.part-1a2b3c4d"
    stale.write_bytes(b"half a file")
    project.upload_images(photos(1))
    assert not stale.exists() and len(list((project.dir / "images").iterdir())) == 1


def test_thumbnail_is_jpeg_bytes(project: Project) -> None:
    (res,) = project.upload_images(photos(1))
    data = project.thumbnail(res.image_id)
    assert data[:3] == b"\xff\xd8\xff"
    assert project.image_path(res.image_id, "thumbnail").read_bytes() == data
