"""One CeleryExecutor cluster per session (see tests/cluster/celery.py): 2 workers, small enough for CI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.cluster.celery import CeleryCluster

WORKERS = 2
CONCURRENCY = 8  # per worker: the 30 storm tasks run in two waves across both workers


@pytest.fixture(scope="session")
def cluster_emulator() -> Iterator[DingTalkEmulator]:
    with DingTalkEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def celery_cluster(
    cluster_emulator: DingTalkEmulator, request: pytest.FixtureRequest
) -> Iterator[CeleryCluster]:
    cluster = CeleryCluster(cluster_emulator, workers=WORKERS, concurrency=CONCURRENCY)
    try:
        yield cluster.start()
    finally:
        cluster.close(request)
