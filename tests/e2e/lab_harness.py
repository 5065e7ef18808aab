"""Real-browser harness shared by the end-to-end test and the upload benchmark.

``running_lab`` starts JupyterLab (this venv) on a free port with a temporary studio home and token,
``open_browser`` starts Debian's headless Chromium through Playwright, ``run_notebook`` opens a
notebook and runs all its cells. Everything started here is stopped here (by process group id).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("NERF_WIDGETS_CHROMIUM", "/usr/bin/chromium")  # Debian's; overridable for tests
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class Lab:
    url: str
    token: str
    root: Path  # notebook folder served by the lab
    home: Path  # NERF_WIDGETS_HOME of its kernels

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_lab(workdir: Path, notebooks: list[Path], startup_s: float = 60.0) -> Iterator[Lab]:
    """JupyterLab serving copies of ``notebooks`` from ``workdir/nb``, studio home ``workdir/home``."""
    root, home, cfg = workdir / "nb", workdir / "home", workdir / "jupyter"
    root.mkdir(parents=True, exist_ok=True)
    _quiet_settings(cfg / "settings")
    for nb in notebooks:
        shutil.copy(nb, root / nb.name)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "NERF_WIDGETS_HOME": str(home), "JUPYTER_CONFIG_DIR": str(cfg / "config"),
           "JUPYTER_RUNTIME_DIR": str(cfg / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(cfg / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(cfg / "settings"), "IPYTHONDIR": str(cfg / "ipython"),
           "OMP_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", "--allow-root",
           f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(workdir / "jupyterlab.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, home)
    try:
        _wait_until_up(lab, proc, startup_s)
        yield lab
    finally:
        _stop(proc)
        log.close()


def _quiet_settings(settings_dir: Path) -> None:
    """No news toast over the widgets; every cell rendered (no windowing) so outputs can be awaited."""
    files = {"apputils-extension/notification": '{"fetchNews": "false", "checkForUpdates": false}',
             "notebook-extension/tracker": '{"windowingMode": "none"}'}
    for name, text in files.items():
        path = settings_dir / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _wait_until_up(lab: Lab, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the lab's process group (server and its kernels), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    try:  # kernels live in the same session; make sure none survive the server
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def open_browser(viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Any]:
    """A Playwright page in headless Chromium; ``page.dialogs`` collects any alert/confirm that fires."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.dialogs = []  # type: ignore[attr-defined]

            def on_dialog(dialog: Any) -> None:
                page.dialogs.append(dialog.message)  # type: ignore[attr-defined]
                dialog.dismiss()

            page.on("dialog", on_dialog)
            yield page
        finally:
            browser.close()


def run_notebook(page: Any, lab: Lab, name: str, done_text: str, timeout_s: float = 60.0) -> None:
    """Open ``name`` in the lab, Run All, wait until ``done_text`` is in an output.

    A "Select Kernel" dialog, which JupyterLab sometimes shows while the session starts, is accepted
    (its default is this venv's python3).
    """
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
    _poll(page, timeout_s, lambda: "| Idle" in " ".join(page.locator(".jp-StatusBar-Widget").all_inner_texts()))
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    done = page.locator(".jp-OutputArea-output", has_text=done_text)
    _poll(page, timeout_s, lambda: done.count() > 0)


def _poll(page: Any, timeout_s: float, ready: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        accept = page.locator(".jp-Dialog .jp-mod-accept")
        if accept.count():
            accept.first.click()
        elif ready():
            return
        page.wait_for_timeout(300)
    page.screenshot(path=str(REPO / "tests" / "artifacts" / "e2e_timeout.png"))
    raise TimeoutError(f"the notebook was not ready within {timeout_s:.0f} s (screenshot: tests/artifacts/e2e_timeout.png)")


__all__ = ["CHROMIUM", "Lab", "open_browser", "run_notebook", "running_lab"]
