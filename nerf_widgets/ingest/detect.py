"""Content sniffing: the type comes from the first bytes, never from the file name or extension."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nerf_widgets.ingest.results import Rejection

ACCEPTED = "JPEG, PNG, WebP, TIFF or HEIC/HEIF images, or MP4, MOV or WebM videos"
HEAD_BYTES = 64  # enough for every signature below

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_KNOWN_OTHERS = {
    b"GIF8": "a GIF",
    b"BM": "a BMP",
    b"%PDF": "a PDF",
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "a gzip archive",
    b"8BPS": "a Photoshop file",
    b"RIFF": "a RIFF file that is not WebP",
}


@dataclass(frozen=True)
class Detected:
    kind: Literal["image", "video"]
    format: str  # jpeg, png, webp, tiff, heif | mp4, mov, webm, mkv
    ext: str  # extension of the stored original


def _iso_bmff(head: bytes) -> Detected:
    """ISO base media files (``ftyp`` box) are HEIF images, AVIF images, or MP4/MOV videos."""
    size = int.from_bytes(head[0:4], "big")
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    avif = head[8:12] in (b"avif", b"avis") or not brands & _HEIF_BRANDS - {b"mif1", b"msf1"} and b"avif" in brands
    if avif:
        raise Rejection(f"AVIF images are not supported; accepted are {ACCEPTED}.")
    if brands & _HEIF_BRANDS:
        return Detected("image", "heif", "heic")
    if head[8:12] == b"qt  ":
        return Detected("video", "mov", "mov")
    return Detected("video", "mp4", "mp4")


def detect(head: bytes) -> Detected:
    """Classify a file from its first ``HEAD_BYTES`` bytes; ``Rejection`` names the accepted types."""
    if not head:
        raise Rejection("The file is empty (0 bytes).")
    if head.startswith(b"\xff\xd8\xff"):
        return Detected("image", "jpeg", "jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Detected("image", "png", "png")
    if head[0:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Detected("image", "webp", "webp")
    if head[0:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Detected("image", "tiff", "tif")
    if head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Detected("video", "webm", "webm") if b"webm" in head else Detected("video", "mkv", "mkv")
    return _reject_unknown(head)


def _reject_unknown(head: bytes) -> Detected:
    what = next((label for magic, label in _KNOWN_OTHERS.items() if head.startswith(magic)), None)
    if what is None:
        try:
            head.decode("utf-8")
            what = "text"
        except UnicodeDecodeError as err:  # a character cut at the end of the head is still text
            what = "text" if err.start >= len(head) - 3 and b"\x00" not in head else "an unknown format"
    raise Rejection(f"The content is {what}, not a supported type; accepted are {ACCEPTED}.")


__all__ = ["ACCEPTED", "HEAD_BYTES", "Detected", "detect"]
