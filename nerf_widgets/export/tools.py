"""External programs the export uses: Blender (FBX) and gltf-transform (Draco / meshopt).

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

from nerf_widgets.core.errors import NerfWidgetsError, ResourceUnavailableError

__all__ = ["blender_command", "compress_gltf", "gltf_transform_command", "run_blender_fbx"]

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


def gltf_transform_command() -> list[str]:
    """Argv prefix for the gltf-transform CLI (npm package @gltf-transform/cli)."""
    found = os.environ.get("NERF_WIDGETS_GLTF_TRANSFORM") or shutil.which("gltf-transform")
    local = _ROOT / "tools" / "node_modules" / ".bin" / "gltf-transform"
    if not found and local.exists():
        found = str(local)
    if not found:
        raise ResourceUnavailableError(
            "Draco/meshopt compression needs gltf-transform: `npm install -g @gltf-transform/cli` "
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
