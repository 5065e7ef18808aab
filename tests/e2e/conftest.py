"""Browser tests need Debian's chromium. On a laptop without it they are skipped with the install command;
under ``CI=true`` a missing browser fails them (CI must never pass without having run them)."""

from __future__ import annotations

import os

import pytest

from tests.e2e.lab_harness import CHROMIUM  # noqa: F401 - re-exported for tests


def missing_browser_outcome(ci: str | None, present: bool) -> str:
    """``run``, ``skip`` or ``fail`` for a browser test (``ci``: the CI environment variable)."""
    if present:
        return "run"
    return "fail" if (ci or "").lower() == "true" else "skip"


@pytest.fixture(autouse=True)
def _chromium_present(request: pytest.FixtureRequest) -> None:
    if "browser" not in request.keywords:
        return
    outcome = missing_browser_outcome(os.environ.get("CI"), os.path.exists(CHROMIUM))
    reason = f"{CHROMIUM} missing: apt-get install -y chromium (./dev test does it)"
    if outcome == "fail":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    if outcome == "skip":
        pytest.skip(reason)
