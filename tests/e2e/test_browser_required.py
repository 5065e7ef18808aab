"""Under CI=true a missing Chromium fails the browser tests; on a laptop it skips them (run in a child pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import missing_browser_outcome

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("ci", "present", "outcome"), [
    ("true", False, "fail"), ("TRUE", False, "fail"), (None, False, "skip"), ("", False, "skip"),
    ("false", False, "skip"), ("true", True, "run"), (None, True, "run"),
])
def test_outcome_table(ci: str | None, present: bool, outcome: str) -> None:
    assert missing_browser_outcome(ci, present) == outcome


@pytest.mark.parametrize(("ci", "code", "word"), [("true", 1, "error"), ("", 0, "skipped")])
def test_a_browser_test_without_chromium(ci: str, code: int, word: str) -> None:
    env = {**os.environ, "CI": ci, "NERF_WIDGETS_CHROMIUM": "/nonexistent/chromium"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                           "tests/e2e/test_studio_browser.py"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert f"1 {word}" in proc.stdout and "/nonexistent/chromium missing" in proc.stdout
