"""Reading what trimesh does not in a glTF file: its JSON as written (``tools`` looks for compression there) and
our view-dependent term (``view_term.EXTENSION``).

The MeshViewer and the benchmarks read meshes through trimesh, which skips extensions it does not know. For the
term this finds the object's material (the mesh named "nerf", else the first), reads the extension's three
images (embedded in a GLB's buffer, or side files inside the .gltf's folder) and the scale.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.export.view_term import EXTENSION, ViewTerm

__all__ = ["read_json", "read_view_term"]


def _read(path: Path, with_blob: bool) -> tuple[dict[str, Any] | None, bytes]:
    """(JSON or None when it is not a glTF, binary chunk or b"") of a .glb (by its magic) or .gltf file; the
    binary chunk read only when asked (a GLB's JSON alone is a few kB of a file of megabytes)."""
    with open(path, "rb") as fh:
        head = fh.read(20)
        if head[:4] == b"glTF" and len(head) == 20 and head[16:20] == b"JSON":
            doc = json.loads(fh.read(struct.unpack("<I", head[12:16])[0]))
            chunk = fh.read(8) if with_blob else b""
            blob = fh.read(struct.unpack("<I", chunk[:4])[0]) if len(chunk) == 8 and chunk[4:8] == b"BIN\x00" else b""
        elif Path(path).suffix.lower() == ".gltf":
            doc, blob = json.loads(head + fh.read()), b""
        else:
            return None, b""
    return (doc if isinstance(doc, dict) else None), blob


def read_json(path: str | Path) -> dict[str, Any] | None:
    """The JSON of a .glb or .gltf file; None when it cannot be read as one."""
    try:
        return _read(Path(path), with_blob=False)[0]
    except (OSError, ValueError, RecursionError):
        return None


def _object_material(doc: dict[str, Any]) -> dict[str, Any] | None:
    meshes = doc.get("meshes") or []
    mesh = next((m for m in meshes if m.get("name") == "nerf"), meshes[0] if meshes else None)
    prims = (mesh or {}).get("primitives") or []
    index = prims[0].get("material") if prims else None
    materials = doc.get("materials") or []
    return materials[index] if isinstance(index, int) and 0 <= index < len(materials) else None


def _image(doc: dict[str, Any], blob: bytes, folder: Path, texture: int) -> np.ndarray:
    from PIL import Image

    entry = doc["images"][doc["textures"][texture]["source"]]
    if "bufferView" in entry:
        view = doc["bufferViews"][entry["bufferView"]]
        start = int(view.get("byteOffset", 0))
        data = blob[start : start + int(view["byteLength"])]
    else:
        side = (folder / entry["uri"]).resolve()
        if folder.resolve() not in side.parents:
            raise ValueError(f"image {entry['uri']!r} lies outside the file's folder")
        data = side.read_bytes()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def read_view_term(path: str | Path) -> ViewTerm | None:
    """The object's view-dependent term of a .glb/.gltf, None when it has none; ValueError when it is broken."""
    path = Path(path)
    if path.suffix.lower() not in (".glb", ".gltf"):
        return None
    try:
        doc, blob = _read(path, with_blob=True)
        if doc is None:
            raise ValueError("not a glTF file")
        material = _object_material(doc)
        ext = ((material or {}).get("extensions") or {}).get(EXTENSION)
        if ext is None:
            return None
        images = [_image(doc, blob, path.parent, int(t["index"])) for t in ext["textures"]]
        return ViewTerm.from_images(images, ext["scale"])
    except (OSError, KeyError, IndexError, TypeError, ValueError, RecursionError, struct.error) as err:
        raise ValueError(f"the file's view-dependent colour ({EXTENSION}) cannot be read: {err}") from err
