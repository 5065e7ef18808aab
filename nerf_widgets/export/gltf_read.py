"""Reading back the part of our glTF files trimesh does not: the view-dependent term (``view_term.EXTENSION``).

The MeshViewer and the benchmarks read meshes through trimesh, which skips extensions it does not know. This
finds the object's material (the mesh named "nerf", else the first), reads the extension's three images
(embedded in a GLB's buffer, or side files inside the .gltf's folder) and the scale.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.export.view_term import EXTENSION, ViewTerm

__all__ = ["read_view_term"]


def _document(path: Path) -> tuple[dict[str, Any], bytes]:
    """(JSON, binary chunk) of a .glb, or (JSON, b"") of a .gltf."""
    raw = path.read_bytes()
    if raw[:4] != b"glTF":
        return json.loads(raw), b""
    length = struct.unpack("<I", raw[12:16])[0]
    doc = json.loads(raw[20 : 20 + length])
    rest = raw[20 + length :]
    blob = rest[8 : 8 + struct.unpack("<I", rest[:4])[0]] if len(rest) >= 8 and rest[4:8] == b"BIN\x00" else b""
    return doc, blob


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
        doc, blob = _document(path)
        material = _object_material(doc) if isinstance(doc, dict) else None
        ext = ((material or {}).get("extensions") or {}).get(EXTENSION)
        if ext is None:
            return None
        images = [_image(doc, blob, path.parent, int(t["index"])) for t in ext["textures"]]
        return ViewTerm.from_images(images, ext["scale"])
    except (OSError, KeyError, IndexError, TypeError, ValueError, RecursionError, struct.error) as err:
        raise ValueError(f"the file's view-dependent colour ({EXTENSION}) cannot be read: {err}") from err
