"""Every accepted format through ``Project.upload_images``: working copy, thumbnail, original, metadata."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nerf_widgets.studio import Project, Studio
from tests.ingest.conftest import encode, jpeg_with_orientation_6, png_rgba, textured, tiff16


def only(results: list) -> object:  # type: ignore[type-arg]
    assert len(results) == 1, results
    return results[0]


def test_jpeg_exif_orientation_is_applied_and_metadata_read(project: Project) -> None:
    res = only(project.upload_images(("phone.jpg", jpeg_with_orientation_6())))
    assert res.status == "accepted", res.reason
    rec = project.image(res.image_id)
    assert (rec.width, rec.height, rec.orig_width, rec.orig_height) == (32, 64, 32, 64)
    assert (rec.camera_make, rec.camera_model, rec.focal_mm, rec.focal_35mm) == ("TestCam", "Model X", 4.2, 26.0)
    work = np.asarray(Image.open(project.image_path(rec.id)))
    assert work.shape == (64, 32, 3)
    # the left (red) half of the sensor is on top once turned upright (orientation 6 = rotate 90 deg clockwise)
    assert work[5, 16, 0] > 200 and work[5, 16, 2] < 60
    assert work[58, 16, 2] > 200 and work[58, 16, 0] < 60
    assert rec.format == "jpeg" and rec.working_ext == "jpg" and not rec.has_alpha
    assert project.image_path(rec.id, "original").read_bytes() == jpeg_with_orientation_6()


def test_unchanged_jpeg_is_not_re_encoded(project: Project, jpeg_bytes: bytes) -> None:
    res = only(project.upload_images(("plain.jpg", jpeg_bytes)))
    assert project.image_path(res.image_id).read_bytes() == jpeg_bytes  # no generation loss
    rotated = only(project.upload_images(("phone.jpg", jpeg_with_orientation_6())))
    assert project.image_path(rotated.image_id).read_bytes() != jpeg_with_orientation_6()


def test_png_alpha_is_kept_as_mask(project: Project) -> None:
    res = only(project.upload_images(("scene.png", png_rgba())))
    rec = project.image(res.image_id)
    assert rec.has_alpha and rec.working_ext == "png" and res.has_alpha
    work = Image.open(project.image_path(rec.id))
    assert work.mode == "RGBA"
    alpha = np.asarray(work.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha[20, 24] == 255
    thumb = Image.open(io.BytesIO(project.thumbnail(rec.id)))
    assert thumb.format == "JPEG" and thumb.mode == "RGB"
    assert np.asarray(thumb)[0, 0].min() > 240  # transparent border shown on white


def test_opaque_alpha_is_dropped(project: Project) -> None:
    res = only(project.upload_images(("opaque.png", encode(textured(40, 30).convert("RGBA"), "PNG"))))
    assert res.status == "accepted" and not res.has_alpha
    assert project.image_path(res.image_id).suffix == ".jpg"


@pytest.mark.parametrize(("fmt", "detected", "ext"), [("WEBP", "webp", "webp"), ("HEIF", "heif", "heic")])
def test_webp_and_heic(project: Project, fmt: str, detected: str, ext: str) -> None:
    data = encode(textured(64, 48, seed=5), fmt, quality=90)
    res = only(project.upload_images([("picture.bin", data)]))  # the name's extension is irrelevant
    assert res.status == "accepted", res.reason
    rec = project.image(res.image_id)
    assert (rec.format, rec.original_ext, rec.width, rec.height) == (detected, ext, 64, 48)
    assert Image.open(project.image_path(rec.id)).size == (64, 48)


def test_tiff_16_bit_is_scaled_not_clipped(project: Project) -> None:
    res = only(project.upload_images(("scan.tif", tiff16())))
    rec = project.image(res.image_id)
    assert rec.format == "tiff"
    grey = np.asarray(Image.open(project.image_path(rec.id)).convert("L")).astype(int)
    assert grey[:, 0].mean() < 8 and grey[:, -1].mean() > 245 and 100 < grey[:, 20].mean() < 160


def test_working_copy_and_thumbnail_are_capped(home: Path) -> None:
    studio = Studio(home, working_long_side=100, thumbnail_size=32)
    p = studio.create_project("caps")
    res = only(p.upload_images(("big.jpg", encode(textured(300, 150), "JPEG"))))
    rec = p.image(res.image_id)
    assert (rec.width, rec.height, rec.orig_width, rec.orig_height) == (100, 50, 300, 150)
    assert Image.open(io.BytesIO(p.thumbnail(rec.id))).size == (32, 16)
    assert Image.open(p.image_path(rec.id, "original")).size == (300, 150)


def test_large_jpeg_is_decoded_at_reduced_scale_but_records_full_size(home: Path) -> None:
    p = Studio(home, working_long_side=100).create_project("draft")
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 deg counter-clockwise to view
    res = only(p.upload_images(("big.jpg", encode(textured(1600, 400), "JPEG", exif=exif))))
    rec = p.image(res.image_id)
    assert (rec.orig_width, rec.orig_height, rec.width, rec.height) == (400, 1600, 25, 100)


def test_sharpness_flags_blurry_images(home: Path) -> None:
    p = Studio(home, blur_threshold=60.0).create_project("blur")
    sharp = encode(textured(96, 96, seed=7), "PNG")
    flat = encode(textured(96, 96, seed=8).resize((6, 6)).resize((96, 96), Image.Resampling.BILINEAR), "PNG")
    a, b = p.upload_images([("sharp.png", sharp), ("soft.png", flat)])
    assert not a.blurry and a.sharpness > 60 and b.blurry and b.sharpness < 60
    assert [i.blurry for i in p.images()] == [False, True]
