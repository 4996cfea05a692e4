"""The cluster test's DAGs (tests/cluster, benchmarks/cluster.py), one pair per state backend.

``cluster_storm_<backend>``: ``params.tasks`` mapped tasks that all fail at once, each with the
custom-robot notifier on one robot. ``cluster_tokens_<backend>``: ``params.tasks`` mapped tasks that
each need the app's access token. ``redis`` uses the connections that follow ``[dingtalk]`` (Redis
in the cluster), ``files`` those whose extras choose the file backend (per worker).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from airflow_provider_dingtalk.notifications import DingTalkCustomRobotNotifier

CONNECTIONS = {"redis": "default", "files": "files"}  # backend -> connection id suffix


def storm(backend: str) -> None:
    notifier = DingTalkCustomRobotNotifier(
        dingtalk_custom_robot_conn_id=f"dingtalk_custom_robot_{CONNECTIONS[backend]}"
    )

    @dag(
        dag_id=f"cluster_storm_{backend}",
        schedule=None,
        params={"tasks": 30},
        max_active_tasks=512,
        is_paused_upon_creation=False,
    )
    def cluster_storm() -> None:
        @task
        def rows(params: dict[str, Any] | None = None) -> list[int]:
            return list(range(int((params or {})["tasks"])))

        @task(on_failure_callback=notifier, retries=0)
        def fail(row: int) -> None:
            raise ValueError(f"row {row} is broken")

        fail.expand(row=rows())

    cluster_storm()


def tokens(backend: str) -> None:
    conn_id = f"dingtalk_{CONNECTIONS[backend]}"

    @dag(
        dag_id=f"cluster_tokens_{backend}",
        schedule=None,
        params={"tasks": 20},
        max_active_tasks=512,
        is_paused_upon_creation=False,
    )
    def cluster_tokens() -> None:
        @task
        def rows(params: dict[str, Any] | None = None) -> list[int]:
            return list(range(int((params or {})["tasks"])))

        @task
        def call(row: int) -> None:
            from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook

            DingTalkBaseHook(conn_id).get_access_token()  # the token itself stays out of XCom

        call.expand(row=rows())

    cluster_tokens()


for _backend in CONNECTIONS:
    storm(_backend)
    tokens(_backend)


def approvals() -> None:
    """Scheduled on the approval event's asset, so the receiver has an asset to write; kept paused
    (the benchmark counts asset events, not runs)."""
    from airflow.sdk import Asset

    from airflow_provider_dingtalk.event_types import event_asset_uri

    @dag(dag_id="cluster_on_approval", schedule=[Asset(event_asset_uri("bpms_instance_change"))])
    def cluster_on_approval() -> None:
        @task
        def noop() -> None:
            """Never runs: the DAG stays paused."""

        noop()

    cluster_on_approval()


approvals()
