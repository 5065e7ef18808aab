"""Shared pytest markers for engine tests."""

from __future__ import annotations

import os

import pytest

from nerf_widgets.engine import kernels

# Laptops without numba skip the kernel tests; under CI=true they run and fail, so missing kernels are seen.
needs_kernels = pytest.mark.skipif(not kernels.available() and os.environ.get("CI") != "true",
                                   reason="numba kernels unavailable (CI=true fails instead)")
