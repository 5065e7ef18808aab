"""Helpers every widget uses: escaping, inline errors, front-end asset lookup.

Widgets never let an exception reach the cell output: ``NerfWidgetsError`` messages are written for
a person and shown as they are; anything else is a bug, logged with its traceback and shown as one
short "internal error" line.
"""

from __future__ import annotations

import html
import importlib.resources
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import ipywidgets

from nerf_widgets.core.errors import NerfWidgetsError, ResourceUnavailableError

log = logging.getLogger("nerf_widgets.widgets")
T = TypeVar("T")

# Where js/*.js and js/*.css are found: a wheel carries them as package data in nerf_widgets/static/ (copied
# there by setup.py at build time); a source checkout or an editable install reads <checkout>/js/.
_SOURCE_DIR = Path(__file__).resolve().parents[2] / "js"


def esc(text: object) -> str:
    """HTML-escape user data (project names, file names) before it goes into an ``HTML`` widget."""
    return html.escape(str(text), quote=True)


def asset_path(name: str) -> Path:
    """Path of a front-end file (ES module or CSS): the installed package's copy, else the checkout's."""
    packaged = importlib.resources.files("nerf_widgets") / "static" / name
    candidates = [Path(str(packaged)), _SOURCE_DIR / name]
    for path in candidates:
        if path.is_file():
            return path
    raise ResourceUnavailableError(
        f"The front-end file {name!r} is missing (looked in {', '.join(str(p.parent) for p in candidates)}); "
        "reinstall nerf_widgets."
    )


def error_message(err: BaseException) -> str:
    """The text a person sees for ``err``; a traceback goes to the log for non-package errors."""
    if isinstance(err, NerfWidgetsError):
        return str(err)
    log.error("internal error in a widget action", exc_info=err)
    return f"Internal error ({type(err).__name__}: {err}). Details are in the Jupyter log."


class Notice(ipywidgets.HTML):
    """An inline message line: ``error(...)``, ``info(...)`` or ``clear()``; text is always escaped."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("nw-notice")

    def error(self, message: str) -> None:
        self.value = f'<div class="nw-error" style="color:#b00020">&#9888; {esc(message)}</div>'

    def info(self, message: str) -> None:
        self.value = f'<div class="nw-info" style="color:#2e7d32">{esc(message)}</div>'

    def clear(self) -> None:
        self.value = ""

    @contextmanager
    def guard(self, clear: bool = True) -> Iterator[None]:
        """Run a widget action; show its error inline instead of raising into the cell.

        ``clear=False`` keeps the current message (for background re-reads, not user actions).
        """
        if clear:
            self.clear()
        try:
            yield
        except Exception as err:  # noqa: BLE001 - shown to the person, logged if unexpected
            self.error(error_message(err))


def guarded(notice: Notice, action: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a button/observer callback so its errors land in ``notice``."""

    def run(*args: Any, **kwargs: Any) -> None:
        with notice.guard():
            action(*args, **kwargs)

    return run


__all__ = ["Notice", "asset_path", "error_message", "esc", "guarded"]
