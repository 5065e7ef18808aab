"""A real local Ray cluster for the executor tests: started by the test command, stopped at its end
(``local_cluster.py``). Under ``CI=true`` a missing Ray fails the run instead of skipping."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.ci import need_tool
from tests.jobs.cluster.local_cluster import ClusterStartError, LocalCluster, local_cluster

CPUS = 2


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    need_tool(importlib.util.find_spec("ray") is not None, "Ray is not installed (pip install 'nerf_widgets[ray]')")
    # no numba compile in each fresh worker process (the engine's kernels are tested apart)
    try:
        with local_cluster(CPUS, env={"NERF_WIDGETS_KERNELS": "0"}) as cluster:
            yield cluster
    except ClusterStartError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def ray_address(ray_cluster: LocalCluster) -> str:
    return ray_cluster.address
