"""The second frontend of the browser tests: nerf_widgets installed from its wheel in ``.venv-compat``.

``./dev test`` builds that venv (``setup_compat``): the wheel of this checkout installed as a pip user gets
it (not editable), ``ipywidgets==7.7.*`` (Colab's) and the classic notebook (Notebook 6.5 with
widgetsnbextension 3). ``running_classic`` starts that venv's classic notebook server. JupyterLab 4's widget
manager renders only ipywidgets 8 models (``@jupyter-widgets/controls`` 1.5.0 "is not registered"), so for
JupyterLab ``wheel_kernels`` runs kernels with ``.venv``'s Python (ipywidgets 8) and the wheel's files alone
(``.venv-compat/wheel-only``, ``pip install --no-deps --target``) in front of the checkout's editable install.
Kernels never see the checkout's source. Under ``CI=true`` a missing venv fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.lab_harness import REPO, Lab, _stop, _wait_until_up, free_port

COMPAT_VENV = REPO / ".venv-compat"
COMPAT_PYTHON = COMPAT_VENV / "bin" / "python"
WHEEL_ONLY = COMPAT_VENV / "wheel-only"
# What a widget manager prints or logs when a model's module or version is unknown to it (classic
# notebook: "Error displaying widget", "Class X not found in module Y@1.2.0"; JupyterLab: "Module ... not registered").
# Not "Could not create a view": JupyterLab logs it for a bqplot Axis in a hidden tab with any install (issue 14, item 1).
WIDGET_ERROR_TEXTS = ("Error displaying widget", "Failed to load model class", "Failed to create view",
                      "not registered", "not found in module", "Could not create a model")


def require_compat_venv() -> Path:
    """The venv's Python; skips on a laptop without it, fails under CI (``./dev test`` must have built it)."""
    if COMPAT_PYTHON.is_file():
        return COMPAT_PYTHON
    message = f"{COMPAT_VENV} is missing: ./dev test builds it (the wheel with ipywidgets 7.7 and the classic notebook)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def assert_wheel_current() -> None:
    """The wheel installed in ``.venv-compat`` carries this checkout's front-end files (else it is stale)."""
    (site,) = (COMPAT_VENV / "lib").glob("python3*/site-packages")
    for folder in (site, WHEEL_ONLY):
        for source in [*(REPO / "js").glob("*.js"), *(REPO / "js").glob("*.css")]:
            installed = folder / "nerf_widgets" / "static" / source.name
            assert installed.is_file() and installed.read_bytes() == source.read_bytes(), (
                f"{installed} is missing or older than {source}: ./dev test rebuilds and reinstalls the wheel")


def kernel_env(home: Path, cfg: Path) -> dict[str, str]:
    """The environment of a server whose kernels must import the installed wheel, never the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update({"NERF_WIDGETS_HOME": str(home), "JUPYTER_CONFIG_DIR": str(cfg / "config"),
                "JUPYTER_RUNTIME_DIR": str(cfg / "runtime"), "JUPYTER_DATA_DIR": str(cfg / "data"),
                "IPYTHONDIR": str(cfg / "ipython"), "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"})
    return env


def wheel_kernels(data_dir: Path) -> Path:
    """A Jupyter data folder (for JUPYTER_PATH) whose ``python3`` kernel imports nerf_widgets from the wheel."""
    spec = data_dir / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (nerf_widgets wheel)", "language": "python",
        "env": {"PYTHONPATH": str(WHEEL_ONLY), "PYTHONNOUSERSITE": "1"}}))
    return data_dir


@contextmanager
def running_classic(workdir: Path, notebooks: list[Path], startup_s: float = 60.0) -> Iterator[Lab]:
    """``.venv-compat``'s classic notebook server on ``workdir/nb`` (copies of ``notebooks``), home ``workdir/home``."""
    root, home, cfg = workdir / "nb", workdir / "home", workdir / "jupyter"
    root.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        shutil.copy(nb, root / nb.name)
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(COMPAT_VENV / "bin" / "jupyter-notebook"), "--no-browser", "--allow-root", f"--port={port}",
           "--ip=127.0.0.1", f"--NotebookApp.token={token}", f"--NotebookApp.notebook_dir={root}"]
    log = open(workdir / "classic.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=workdir, env=kernel_env(home, cfg), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, root, home)
    try:
        _wait_until_up(server, proc, startup_s)
        yield server
    finally:
        _stop(proc)
        log.close()


def watch_console(page: Any) -> list[str]:
    """Collect the page's console errors and uncaught exceptions (the list fills while the page lives)."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(f"uncaught: {err}"))
    return errors


def widget_errors(page: Any, console: list[str]) -> list[str]:
    """Widget-manager failures: in the page's text (error outputs), in the console, or uncaught in a view."""
    text = page.locator("body").inner_text()
    return [t for t in WIDGET_ERROR_TEXTS if t in text] + [
        line for line in console
        if any(t in line for t in WIDGET_ERROR_TEXTS) or "version" in line.lower() or line.startswith("uncaught: ")]


# widgetsnbextension 3 asks an ipywidgets 7 kernel for its widgets when it starts (the "jupyter.widget.control"
# comm fails, then one comm_info round trip); widgets created by cells run before that answer arrives get a
# second model and their output disappears. A person never runs cells that fast; the test waits like one.
_RECORD_WARNINGS = """window.__nwWarnings = []; const nwWarn = console.warn.bind(console);
console.warn = (...args) => { window.__nwWarnings.push(args.map(String).join(" ")); nwWarn(...args); };"""
_MANAGER_STARTED = """() => { const k = window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel;
  return !!(k && k.is_connected() && k.widget_manager
            && window.__nwWarnings.some((w) => w.includes("jupyter.widget.control"))); }"""


def run_classic_notebook(page: Any, server: Lab, name: str, done_text: str, timeout_s: float = 120.0) -> None:
    """Open ``name`` in the classic notebook, run all cells once the widget manager is ready, wait for ``done_text``."""
    page.add_init_script(_RECORD_WARNINGS)
    page.goto(f"{server.url}/notebooks/{name}?token={server.token}")
    page.wait_for_function(_MANAGER_STARTED, timeout=timeout_s * 1000)
    page.evaluate("async () => { await Jupyter.notebook.kernel.widget_manager._get_comm_info(); }")  # after its own
    page.evaluate("() => Jupyter.notebook.execute_all_cells()")
    page.locator(".output_area", has_text=done_text).first.wait_for(timeout=timeout_s * 1000)


__all__ = ["COMPAT_PYTHON", "WHEEL_ONLY", "assert_wheel_current", "kernel_env", "require_compat_venv", "run_classic_notebook",
           "running_classic", "watch_console", "wheel_kernels",
           "widget_errors"]
