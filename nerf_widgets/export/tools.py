"""External programs the export uses: Blender (FBX) and gltf-transform (Draco / meshopt, both ways).

Found, in order, through an environment variable, the PATH, and the checkout's own tool folders
(``tools/node_modules`` from ``npm ci`` in tools/, ``.venv-fbx`` with ``bpy`` from PyPI). Missing tools
raise ``ResourceUnavailableError`` with the install line, before any export work starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from nerf_widgets.core.errors import NerfWidgetsError, ResourceUnavailableError, ValidationError
from nerf_widgets.export.gltf_read import read_json

__all__ = ["blender_command", "compress_gltf", "decompress_gltf", "gltf_compression", "gltf_transform_command",
           "run_blender_fbx"]

_ROOT = Path(__file__).resolve().parents[2]
_FBX_SCRIPT = """
import sys
import bpy
src, dst = sys.argv[sys.argv.index("--") + 1:][:2]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.wm.obj_import(filepath=src)
bpy.ops.export_scene.fbx(filepath=dst, path_mode="COPY", embed_textures=True, object_types={"MESH"},
                         axis_forward="-Z", axis_up="Y", colors_type="SRGB",
                         apply_scale_options="FBX_SCALE_UNITS")
"""


def blender_command() -> list[str]:
    """Argv prefix that runs a Python script with ``bpy``: a Python with bpy installed, or Blender itself."""
    found = os.environ.get("NERF_WIDGETS_BLENDER") or shutil.which("blender")
    if not found and (_ROOT / ".venv-fbx" / "bin" / "python").exists():
        found = str(_ROOT / ".venv-fbx" / "bin" / "python")
    if not found:
        raise ResourceUnavailableError(
            "FBX export needs Blender: `python3.11 -m venv .venv-fbx && .venv-fbx/bin/pip install bpy==5.0.1` "
            "(or `apt-get install blender`), or set NERF_WIDGETS_BLENDER to a python with bpy or a blender binary"
        )
    if Path(found).name.startswith("python"):
        return [found]
    return [found, "--background", "--factory-startup", "--python-exit-code", "1", "--python"]


def gltf_transform_command(purpose: str = "Draco/meshopt compression needs") -> list[str]:
    """Argv prefix for the gltf-transform CLI (npm package @gltf-transform/cli); ``purpose`` starts the message
    when it is missing."""
    chosen = os.environ.get("NERF_WIDGETS_GLTF_TRANSFORM")
    if chosen and not shutil.which(chosen):
        raise ResourceUnavailableError(f"NERF_WIDGETS_GLTF_TRANSFORM is {chosen!r}, which is not a program here: "
                                       "point it at the gltf-transform command, or unset it")
    found = chosen or shutil.which("gltf-transform")
    local = _ROOT / "tools" / "node_modules" / ".bin" / "gltf-transform"
    if not found and local.exists():
        found = str(local)
    if not found:
        raise ResourceUnavailableError(
            f"{purpose} gltf-transform: `npm install -g @gltf-transform/cli` "
            "(or `npm ci` in the repository's tools/ folder), or set NERF_WIDGETS_GLTF_TRANSFORM"
        )
    return [found]


def _run(argv: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NerfWidgetsError(f"{what} failed to run: {err}") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise NerfWidgetsError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")


def run_blender_fbx(obj_path: Path, fbx_path: Path, timeout: float = 600) -> None:
    """OBJ (+MTL +texture) -> binary FBX with the texture embedded, in a Blender subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "obj_to_fbx.py"
        script.write_text(_FBX_SCRIPT)
        _run([*blender_command(), str(script), "--", str(obj_path), str(fbx_path)], "Blender FBX export", timeout)
    if not fbx_path.exists():
        raise NerfWidgetsError("Blender FBX export wrote no file")


def compress_gltf(src: Path, dst: Path, method: str, timeout: float = 600) -> None:
    """Draco (KHR_draco_mesh_compression) or meshopt (EXT_meshopt_compression) via gltf-transform."""
    _run([*gltf_transform_command(), method, str(src), str(dst)], f"gltf-transform {method}", timeout)


# glTF encodings trimesh cannot read (Draco: all-zero vertices; meshopt: an IndexError; quantised integers: sizes
# in the tens of thousands), in the order they are named; gltf-transform decodes all three
ENCODINGS = {"KHR_draco_mesh_compression": "Draco", "EXT_meshopt_compression": "meshopt",
             "KHR_mesh_quantization": "quantised"}


def _names(value: Any) -> set[str]:
    """Extension names in a list of names or in an ``extensions`` object (anything else: none)."""
    return {k for k in value if isinstance(k, str)} if isinstance(value, (dict, list)) else set()


def _encodings(doc: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(extension names the file declares, names its primitives and buffer views use)."""
    declared = _names(doc.get("extensionsUsed")) | _names(doc.get("extensionsRequired"))
    used: set[str] = set()
    meshes = doc.get("meshes")
    for mesh in meshes if isinstance(meshes, list) else []:
        primitives = mesh.get("primitives") if isinstance(mesh, dict) else None
        for primitive in primitives if isinstance(primitives, list) else []:
            used |= _names(primitive.get("extensions")) if isinstance(primitive, dict) else set()
    views = doc.get("bufferViews")
    for view in views if isinstance(views, list) else []:
        used |= _names(view.get("extensions")) if isinstance(view, dict) else set()
    return declared, used


def gltf_compression(path: Path) -> str | None:
    """"Draco", "meshopt" or "quantised" when a .glb / .gltf file's meshes are encoded so, else None (also for
    files that are not glTF or cannot be read: their reader reports those). Looks at the declared extensions
    and at the primitives and buffer views themselves (a file that does not declare them is still encoded)."""
    doc = read_json(path)
    return None if doc is None else _encoding(*_encodings(doc))


def _encoding(declared: set[str], used: set[str]) -> str | None:
    return next((label for name, label in ENCODINGS.items() if name in declared | used), None)


def decompress_gltf(src: Path, dst: Path, timeout: float = 600) -> None:
    """A Draco, meshopt or quantised glTF as a plain one with float accessors (gltf-transform decodes them as it
    reads, and ``dequantize`` turns quantised integers back to floats), written as ``dst`` (+ side files).

    A .gltf whose side files lie outside its folder is refused: gltf-transform writes them again by the same
    relative names, which would put them outside ``dst``'s folder, over the originals in the worst case."""
    src = Path(src)
    doc = read_json(src) or {}
    declared, used = _encodings(doc)
    kind = _encoding(declared, used) or "compressed"
    undeclared = sorted((used - declared) & set(ENCODINGS))
    if undeclared:
        raise ValidationError(f"{src.name} uses {undeclared[0]} without declaring it in extensionsUsed, against the "
                              "glTF spec: no reader decodes it as it is")
    items = [item for key in ("buffers", "images") if isinstance(doc.get(key), list) for item in doc[key]]
    for item in items:
        uri = item.get("uri") if isinstance(item, dict) else None
        if isinstance(uri, str) and not uri.startswith("data:"):
            target = (src.parent / unquote(uri)).resolve()
            if not target.is_relative_to(src.parent.resolve()):
                raise ValidationError(f"{src.name} refers to {uri!r}, outside its folder: move the file and what it "
                                      "refers to into one folder")
    command = gltf_transform_command(f"{src.name} is {kind}-encoded; showing it needs")
    _run([*command, "dequantize", str(src), str(dst)], f"decoding {src.name} ({kind}) with gltf-transform", timeout)
