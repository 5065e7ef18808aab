"""Type detection from content (magic bytes), never from names."""

from __future__ import annotations

import pytest

from nerf_widgets.ingest.detect import detect
from nerf_widgets.ingest.results import Rejection


@pytest.mark.parametrize(
    ("head", "kind", "fmt"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image", "png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image", "webp"),
        (b"II*\x00\x08\x00\x00\x00", "image", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "image", "tiff"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "image", "heif"),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmiaf", "image", "heif"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "video", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video", "webm"),
    ],
)
def test_accepted_signatures(head: bytes, kind: str, fmt: str) -> None:
    det = detect(head)
    assert (det.kind, det.format) == (kind, fmt)


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"", "empty"),
        (b"GIF89a\x01\x00", "a GIF"),
        (b"%PDF-1.7\n", "a PDF"),
        (b"hello, this is not a photo\n", "text"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "AVIF"),
        (bytes(range(200, 256)), "unknown format"),
    ],
)
def test_rejections_name_what_it_is_and_what_is_accepted(head: bytes, what: str) -> None:
    with pytest.raises(Rejection) as info:
        detect(head)
    assert what in info.value.reason
    if head:
        assert "JPEG, PNG, WebP, TIFF or HEIC/HEIF" in info.value.reason
