"""Bad input gets its documented answer and leaves nothing behind (checked on disk and in the database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerf_widgets.core.errors import ValidationError
from nerf_widgets.studio import Project, Studio
from tests.ingest.conftest import encode, png_header_only, textured


def disk(project: Project) -> dict[str, list[str]]:
    """Every file under the image folders, temp files included."""
    return {sub: sorted(p.name for p in (project.dir / sub).iterdir()) for sub in ("originals", "images", "thumbs")}


def assert_nothing_stored(project: Project) -> None:
    assert disk(project) == {"originals": [], "images": [], "thumbs": []}
    assert project.db.query("SELECT id FROM images") == []
    assert project.state == "Created"
    assert [h.transition for h in project.history] == ["create"]


def reject_one(project: Project, item: object) -> str:
    (res,) = project.upload_images(item)
    assert res.status == "rejected" and res.image_id is None
    assert res.to_dict()["message"].startswith(res.name)
    return str(res.reason)


def test_zero_bytes(project: Project) -> None:
    assert "empty" in reject_one(project, ("empty.jpg", b""))
    assert_nothing_stored(project)


def test_truncated_jpeg(project: Project, jpeg_bytes: bytes) -> None:
    reason = reject_one(project, ("cut.jpg", jpeg_bytes[: len(jpeg_bytes) // 2]))
    assert "truncated" in reason
    assert_nothing_stored(project)


def test_text_renamed_jpg(project: Project, tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("definitely not a photo\n")
    reason = reject_one(project, fake)
    assert "text" in reason and "JPEG, PNG, WebP, TIFF or HEIC/HEIF" in reason
    assert_nothing_stored(project)


def test_png_declaring_ten_gigapixels_is_refused_from_the_header(project: Project) -> None:
    reason = reject_one(project, ("bomb.png", png_header_only(100_000, 100_000)))
    assert "pixels" in reason and "limit" in reason
    assert_nothing_stored(project)


def test_pixel_limit_from_settings_is_checked_before_decoding(home: Path) -> None:
    p = Studio(home, max_pixels=1000).create_project("small limit")
    reason = reject_one(p, ("wide.png", png_header_only(2000, 1)))  # would fail to decode: only the header is real
    assert "2000 x 1" in reason and "limit" in reason
    assert_nothing_stored(p)


def test_oversize_file_and_batch(home: Path, jpeg_bytes: bytes) -> None:
    p = Studio(home, max_file_bytes=len(jpeg_bytes) - 1, max_batch_bytes=3 * len(jpeg_bytes)).create_project("lim")
    assert "limit per file" in reject_one(p, ("big.jpg", jpeg_bytes))
    small = encode(textured(8, 8), "JPEG")
    with pytest.raises(ValidationError, match="limit per upload"):
        p.upload_images([("s.jpg", small)] * 4 + [("big.jpg", jpeg_bytes)] * 3)
    assert_nothing_stored(p)


def test_missing_path_and_unsupported_item(project: Project, tmp_path: Path) -> None:
    assert "does not exist" in reject_one(project, tmp_path / "nope.jpg")
    with pytest.raises(ValidationError, match="Cannot upload a int"):
        project.upload_images([42])
    assert_nothing_stored(project)


def test_name_with_nul_is_refused(project: Project, jpeg_bytes: bytes) -> None:
    (res,) = project.upload_images(("evil\x00.jpg", jpeg_bytes))
    assert res.status == "rejected" and "control characters" in str(res.reason)
    assert "\x00" not in res.name and res.name == "evil\\x00.jpg"
    assert_nothing_stored(project)


def test_traversal_name_is_metadata_only(project: Project, jpeg_bytes: bytes, tmp_path: Path) -> None:
    """``../../etc/passwd`` is stored as the name ``passwd``; files are named by id inside the project."""
    (res,) = project.upload_images(("../../etc/passwd", jpeg_bytes))
    assert res.status == "accepted" and res.name == "passwd"
    assert project.image(res.image_id).original_name == "passwd"
    assert disk(project) == {"originals": [f"{res.image_id}.jpg"], "images": [f"{res.image_id}.jpg"],
                             "thumbs": [f"{res.image_id}.jpg"]}
    assert not (tmp_path / "etc").exists() and not (project.dir.parent / "etc").exists()


def test_html_name_is_kept_verbatim_as_text(project: Project, jpeg_bytes: bytes) -> None:
    name = "<img src=x onerror=alert(1)>.jpg"
    (res,) = project.upload_images((name, jpeg_bytes))
    assert res.status == "accepted" and project.images()[0].original_name == name
    assert all("<" not in f for files in disk(project).values() for f in files)


def test_a_failed_write_leaves_no_partial_outputs(project: Project, jpeg_bytes: bytes) -> None:
    """The thumbnail cannot be written (its folder is a file): the working copy written before it is removed."""
    (project.dir / "thumbs").rmdir()
    (project.dir / "thumbs").write_text("not a folder")
    (res,) = project.upload_images(("a.jpg", jpeg_bytes))
    assert res.status == "rejected" and "could not be saved" in str(res.reason)
    assert list((project.dir / "images").iterdir()) == [] and list((project.dir / "originals").iterdir()) == []
    assert project.images() == [] and project.state == "Created"


def test_mixed_batch_keeps_the_good_files_only(project: Project, jpeg_bytes: bytes) -> None:
    good = encode(textured(30, 20, seed=9), "PNG")
    results = project.upload_images([("a.jpg", jpeg_bytes), ("bad.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30),
                                     ("b.png", good), ("c.jpg", b"")])
    assert [r.status for r in results] == ["accepted", "rejected", "accepted", "rejected"]
    ids = {r.image_id for r in results if r.image_id}
    assert {i.id for i in project.images()} == ids
    assert all(len(files) == 2 for files in disk(project).values())
    assert project.state == "ImagesUploaded"


@pytest.mark.parametrize(("w", "h"), [(1, 1), (15, 400), (400, 15)])
def test_images_too_small_to_reconstruct_from_are_refused(project: Project, w: int, h: int) -> None:
    reason = reject_one(project, ("tiny.png", encode(textured(w, h), "PNG")))
    assert reason == (f"The image is {w} x {h} px; at least 16 px on the short side are needed to estimate poses "
                      "and train from it.")
    assert_nothing_stored(project)


def test_the_minimum_side_is_a_setting_and_applies_to_video_frames(home: Path, tmp_path: Path) -> None:
    from tests.ingest.conftest import video_mp4

    p = Studio(home, min_image_side=64).create_project("min")
    assert "at least 64 px" in reject_one(p, ("shot.png", encode(textured(80, 60), "PNG")))
    (res,) = p.upload_images(video_mp4(tmp_path / "clip.mp4", seconds=1.0, size=(64, 48)))
    assert res.status == "rejected" and "64 x 48 px; at least 64 px" in str(res.reason)
    assert_nothing_stored(p)
    assert len(p.upload_images(("edge.png", encode(textured(64, 64), "PNG")))) == 1 and len(p.images()) == 1


def test_links_out_of_an_added_folder_are_not_followed(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "private" / "secret.jpg"
    outside.parent.mkdir()
    outside.write_bytes(encode(textured(64, 48, seed=1), "JPEG"))
    folder = tmp_path / "shots"
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "real.jpg").write_bytes(encode(textured(64, 48, seed=2), "JPEG"))
    (folder / "a_escape.jpg").symlink_to(outside)
    (folder / "b_escape_dots.jpg").symlink_to(Path("..") / "private" / "secret.jpg")
    (folder / "c_inside.jpg").symlink_to(folder / "inner" / "real.jpg")
    results = project.upload_images(folder)
    assert [(r.name, r.status) for r in results] == [
        ("a_escape.jpg", "rejected"), ("b_escape_dots.jpg", "rejected"), ("c_inside.jpg", "accepted")]
    assert "a link to a file outside the folder being added" in str(results[0].reason)
    assert [img.original_name for img in project.images()] == ["c_inside.jpg"]
    assert len(list((project.dir / "originals").iterdir())) == 1
