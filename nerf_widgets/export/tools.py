"""External programs the export uses: Blender (FBX) and gltf-transform (Draco / meshopt, both ways).

Found, in order, through an environment variable, the PATH, and the checkout's own tool folders
(``tools/node_modules`` from ``npm ci`` in tools/, ``.venv-fbx`` with ``bpy`` from PyPI). Missing tools
raise ``ResourceUnavailableError`` with the install line, before any export work starts.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from nerf_widgets.core.errors import NerfWidgetsError, ResourceUnavailableError

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
    found = os.environ.get("NERF_WIDGETS_GLTF_TRANSFORM") or shutil.which("gltf-transform")
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


# glTF extensions whose meshes a reader without the decoder cannot use (trimesh: zeros for Draco, a crash for meshopt)
COMPRESSIONS = {"KHR_draco_mesh_compression": "draco", "EXT_meshopt_compression": "meshopt"}


def gltf_compression(path: Path) -> str | None:
    """"draco" or "meshopt" when a .glb / .gltf file's meshes are compressed, else None (also for files that are
    not glTF, or whose header cannot be read: their reader reports those)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
            if head[:4] == b"glTF" and len(head) == 20 and head[16:20] == b"JSON":
                doc = json.loads(fh.read(struct.unpack("<I", head[12:16])[0]))
            elif Path(path).suffix.lower() == ".gltf":
                doc = json.loads(head + fh.read())
            else:
                return None
    except (OSError, ValueError):
        return None
    used = doc.get("extensionsUsed", []) if isinstance(doc, dict) else []
    return next((COMPRESSIONS[name] for name in used if name in COMPRESSIONS), None)


def decompress_gltf(src: Path, dst: Path, timeout: float = 600) -> None:
    """A Draco or meshopt glTF as a plain one, float accessors (gltf-transform decodes both as it reads, and
    ``dequantize`` turns meshopt's quantised integers back to floats)."""
    kind = gltf_compression(src) or "compressed"
    command = gltf_transform_command(f"{Path(src).name} is {kind}-compressed; showing it needs")
    _run([*command, "dequantize", str(src), str(dst)], "gltf-transform dequantize", timeout)
