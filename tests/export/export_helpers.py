"""Independent readers and coordinate helpers for the export tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def y_up_to_z_up(v: np.ndarray) -> np.ndarray:
    """Inverse of formats.z_up_to_y_up: file coordinates (Y up) back to world (Z up)."""
    return np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)


def validate_gltf(path: Path) -> dict:
    """Khronos glTF validator (npm gltf-validator via tools/validate-gltf.mjs) -> its report line."""
    script = ROOT / "tools" / "validate-gltf.mjs"
    if not (ROOT / "tools" / "node_modules" / "gltf-validator").exists():
        pytest.fail("gltf-validator missing: run `npm ci` in tools/ (./dev test does)")
    done = subprocess.run(["node", str(script), str(path)], capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def assimp_info(path: Path) -> dict[str, str]:
    """`assimp info FILE` (Debian assimp-utils) parsed into its 'Key: value' lines."""
    exe = shutil.which("assimp")
    if exe is None:
        pytest.fail("assimp missing: apt-get install assimp-utils (./dev test does)")
    done = subprocess.run([exe, "info", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if line.startswith(("Minimum point", "Maximum point")):
            info.setdefault(line[:13], line[13:].strip())
        elif ":" in line:
            key, value = line.split(":", 1)
            info.setdefault(key.strip(), value.strip())  # the summary comes first; later lines reuse keys
    return info


def need_blender() -> None:
    """FBX needs Blender; ./dev installs it, so only a bare local checkout may skip."""
    from nerf_widgets.core.errors import ResourceUnavailableError
    from nerf_widgets.export.tools import blender_command

    try:
        blender_command()
    except ResourceUnavailableError as err:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(err))
