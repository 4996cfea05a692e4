"""Approval tests: the emulator's demo template, and a hook on the ``dingtalk_default`` connection."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook
from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator

DEMO = "PROC-EMULATOR-DATA-EXPORT"
FORM: dict[str, Any] = {"Dataset": "orders", "Rows": 1200, "Destination": "S3", "Reason": "quarterly"}


@pytest.fixture
def hook(dingtalk_conn: DingTalkEmulator) -> DingTalkApprovalHook:
    return DingTalkApprovalHook(retry_policy=RetryPolicy(initial_wait=0.01, max_wait=0.05))


def open_instance(emulator: DingTalkEmulator) -> dict[str, Any]:
    (instance,) = [i for i in emulator.approval_instances() if i["status"] == "RUNNING"]
    return instance
