"""Browser tests need Debian's chromium; without it they are skipped with the install command."""

from __future__ import annotations

import os

import pytest

from tests.e2e.lab_harness import CHROMIUM  # noqa: F401 - re-exported for tests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} missing: apt-get install -y chromium (./dev test does it)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
