"""The few places where ipywidgets 7.7 (Colab, classic notebook) and 8 differ, and Colab's widget manager.

Every widget is written against the API both versions share; what differs goes through here:
- ``Tab`` titles: 8 has a ``titles`` tuple, 7 only ``set_title(i, t)`` / ``get_title(i)`` (8 keeps those too);
- tooltips of description widgets: 8 calls them ``tooltip``, 7 ``description_tooltip`` (deprecated in 8);
- Colab renders third-party widgets (pythreejs, bqplot) only through its custom widget manager, which
  must be enabled before the first widget is displayed (anywidget enables it for itself only).
"""

from __future__ import annotations

import importlib.util

import ipywidgets

__all__ = ["IPYWIDGETS_MAJOR", "enable_colab_widgets", "set_tab_titles", "tab_titles", "tooltip"]

IPYWIDGETS_MAJOR = int(ipywidgets.__version__.split(".")[0])
_colab_enabled = False


def set_tab_titles(tab: ipywidgets.Tab, titles: list[str]) -> None:
    """Give each page of ``tab`` its title (one title per child, in order)."""
    for index, title in enumerate(titles):
        tab.set_title(index, title)


def tab_titles(tab: ipywidgets.Tab) -> list[str]:
    """The titles of ``tab``'s pages, in order ("" for a page without one)."""
    return [tab.get_title(index) or "" for index in range(len(tab.children))]


def tooltip(text: str) -> dict[str, str]:
    """Keyword argument that sets the hover text of a description widget (``Text``, ``IntText``...)."""
    return {"tooltip": text} if IPYWIDGETS_MAJOR >= 8 else {"description_tooltip": text}


def in_colab() -> bool:
    """Whether this kernel runs in Google Colab (its ``google.colab`` package is importable)."""
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):  # no ``google`` package at all, or a broken namespace
        return False


def enable_colab_widgets() -> bool:
    """In Colab, switch on its custom widget manager once (before any widget is shown); elsewhere nothing.

    Returns whether it is enabled. Without it Colab draws anywidget's views but not pythreejs' or bqplot's.
    """
    global _colab_enabled
    if _colab_enabled or not in_colab():
        return _colab_enabled
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    _colab_enabled = True
    return True

