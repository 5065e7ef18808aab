"""Missing tools: skipped on a laptop, a failure under CI (``CI=true``), where every tool must be present."""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def need_tool(present: bool, what: str) -> None:
    """Call at the start of a test (or an autouse fixture) that needs a tool; ``what`` says what is missing."""
    if present:
        return
    if under_ci():
        pytest.fail(f"{what} (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(what)
