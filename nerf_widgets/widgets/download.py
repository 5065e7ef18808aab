"""The one download link of the package: an export's file, shown in a notebook or a panel.

Below the kernel's working folder the link is relative, which JupyterLab and Notebook 7 resolve against the
notebook's folder to the server's ``files/`` route (nothing inlined). Elsewhere (the studio home is usually
outside the server root) the bytes travel as a ``data:`` URL up to ``INLINE_LINK_BYTES``, else the path is
shown to copy the file from.
"""

from __future__ import annotations

import base64
import sys
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["INLINE_LINK_BYTES", "download_html", "download_link", "in_notebook", "show_download"]

MiB = 1024 * 1024
INLINE_LINK_BYTES = 64 * MiB  # larger files outside the notebook folder are shown as a path


def _relative(path: Path, cwd: Path | None) -> str | None:
    try:
        return path.resolve().relative_to((cwd or Path.cwd()).resolve()).as_posix()
    except ValueError:
        return None


def download_html(path: Path, cwd: Path | None = None) -> str:
    """The link as HTML text: relative below ``cwd`` (default: the kernel's folder), else inlined or the path."""
    path = Path(path)
    size = path.stat().st_size
    label = f"Download {escape(path.name)}</a> ({size / 1e6:.2f} MB)"
    relative = _relative(path, cwd)
    if relative is not None:
        return f'<a href="{escape(quote(relative))}" download="{escape(path.name)}" target="_blank">{label}'
    if size > INLINE_LINK_BYTES:
        return f"<code>{escape(str(path))}</code> ({size / 1e6:.1f} MB: copy it from there)"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<a download="{escape(path.name)}" href="data:application/octet-stream;base64,{data}">{label}'


def download_link(path: Path, cwd: Path | None = None) -> Any:
    """A displayable link: an HTML output for a relative link (kept in the notebook file), else an
    ``ipywidgets.HTML`` (widget state, so inlined bytes are not saved into the notebook)."""
    html = download_html(path, cwd)
    if _relative(Path(path), cwd) is not None:
        from IPython.display import HTML

        return HTML(html)
    import ipywidgets

    return ipywidgets.HTML(html)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_download(path: Path, show: bool | None = None) -> Path:
    """Display ``download_link(path)`` when ``show`` (None: when running in a notebook); returns ``path``.

    ``show_download(project.download_export())`` is the scripted form of the ExportPanel's link.
    """
    if show is True or (show is None and in_notebook()):
        from IPython.display import display

        display(download_link(path))
    return Path(path)
