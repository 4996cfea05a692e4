"""Cluster-wide state on a real CeleryExecutor: 2 workers, each its own "machine", sharing Redis.

An alert storm (30 mapped tasks failing at once, each notifying one custom robot) and a token storm
(20 mapped tasks each needing the app's access token) run together on the cluster of conftest.py.
What counts is what reached the emulator: no 130101, at most 20 robot messages in any minute, every
failure named or counted once, one ``gettoken`` for the cluster.

Time is real on both sides: Airflow's task processes on two workers cannot share a fake clock, and
letting only the emulator's clock run faster would not shorten the pacer's waits, which read the
workers' clocks. The test stays fast because the storm never waits out DingTalk's minute: alerts
go on their own while the robot keeps 10 of its 20 slots free, then one summary every 6.2 s folds
what waits, so the 30 alerts are out within seconds of the last failure (as they must be: Airflow
kills a failure callback 20 s after its task's final state).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.airflow_services import wait_for
from tests.cluster.celery import ROBOTS, CeleryCluster, alerts_accounted, sends_per_minute

pytestmark = pytest.mark.cluster

STORM_TASKS = 30
TOKEN_TASKS = 20
RUN_TIMEOUT = 150.0
RATE_LIMITED = 130101


@dataclass
class Runs:
    storm: str
    tokens: str
    gettoken_before: int


@pytest.fixture(scope="module")
def runs(celery_cluster: CeleryCluster, cluster_emulator: DingTalkEmulator) -> Runs:
    """Both storms triggered together, both finished."""
    airflow = celery_cluster.airflow
    before = cluster_emulator.calls("/gettoken")
    storm = airflow.trigger_run("cluster_storm_redis", {"tasks": STORM_TASKS})
    tokens = airflow.trigger_run("cluster_tokens_redis", {"tasks": TOKEN_TASKS})
    airflow.wait_for_run("cluster_storm_redis", storm, timeout=RUN_TIMEOUT)
    airflow.wait_for_run("cluster_tokens_redis", tokens, timeout=RUN_TIMEOUT)
    return Runs(storm, tokens, before)


def test_both_workers_ran_tasks(celery_cluster: CeleryCluster, runs: Runs) -> None:
    per_worker = celery_cluster.tasks_per_worker()
    assert sum(per_worker.values()) >= STORM_TASKS + TOKEN_TASKS + 2, per_worker
    assert all(per_worker.values()), f"a worker ran nothing, so nothing was shared: {per_worker}"


def test_alert_storm_on_one_robot_across_workers(
    celery_cluster: CeleryCluster, cluster_emulator: DingTalkEmulator, runs: Runs
) -> None:
    airflow = celery_cluster.airflow
    tis = airflow.task_instances("cluster_storm_redis", runs.storm)
    failed = sorted(index for (task, index), ti in tis.items() if task == "fail" and ti["state"] == "failed")
    assert failed == list(range(STORM_TASKS)), airflow.explain("cluster_storm_redis", runs.storm)

    def messages() -> list[dict[str, object]]:
        return [d.message for d in cluster_emulator.inbox("custom_robot") if d.target == ROBOTS["redis"]]

    def all_accounted() -> bool:
        named, unnamed = alerts_accounted(messages(), "cluster_storm_redis")
        return len(named) + unnamed >= STORM_TASKS

    # A task's state is final before its failure callback has finished sending.
    wait_for("every failure alerted", all_accounted, timeout=90, logs=airflow.logs)
    time.sleep(2)  # a late duplicate would show now
    named, unnamed = alerts_accounted(messages(), "cluster_storm_redis")
    assert len(named) == len(set(named)), f"named twice: {sorted(named)}"
    assert set(named) <= set(range(STORM_TASKS))
    assert len(named) + unnamed == STORM_TASKS, (sorted(named), unnamed)

    sends = cluster_emulator.requests("/robot/send")
    assert not [
        r for r in sends if isinstance(r.response, dict) and r.response.get("errcode") == RATE_LIMITED
    ]
    times = [d.time for d in cluster_emulator.inbox("custom_robot") if d.target == ROBOTS["redis"]]
    assert sends_per_minute(times) <= 20, sorted(times)


def test_one_gettoken_for_the_cluster(cluster_emulator: DingTalkEmulator, runs: Runs) -> None:
    assert cluster_emulator.calls("/gettoken") - runs.gettoken_before == 1
