"""Approval tests: the emulator's demo template, and a hook on the ``dingtalk_default`` connection."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

if TYPE_CHECKING:  # the hook imports Airflow, which must not load before the DingTalk plugin's set-up
    from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook

DEMO = "PROC-EMULATOR-DATA-EXPORT"
FORM: dict[str, Any] = {"Dataset": "orders", "Rows": 1200, "Destination": "S3", "Reason": "quarterly"}


@pytest.fixture
def hook(dingtalk_conn: DingTalkEmulator) -> DingTalkApprovalHook:
    from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook

    return DingTalkApprovalHook(retry_policy=RetryPolicy(initial_wait=0.01, max_wait=0.05))


def open_instance(emulator: DingTalkEmulator) -> dict[str, Any]:
    (instance,) = [i for i in emulator.approval_instances() if i["status"] == "RUNNING"]
    return instance


class StateStore:
    """What Airflow 3.3's ``context["task_state_store"]`` does: a per-task-and-run store retries share."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


class TaskInstance:
    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, *, key: str, value: Any) -> None:
        self.xcom[key] = value


def context(store: StateStore | None, try_number: int = 1) -> dict[str, Any]:
    """A task's context as the operator reads it: ``ti``, ``task_state_store`` (3.3) and ``dag_run``."""
    from datetime import datetime, timedelta

    class Run:
        start_date = datetime.now(UTC) - timedelta(minutes=5)

    ctx: dict[str, Any] = {"ti": TaskInstance(try_number), "dag_run": Run()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx
