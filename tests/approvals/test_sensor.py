"""DingTalkApprovalSensor: an approval started elsewhere, by id or found by template and originator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_dingtalk.approvals import form_component_values
from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook
from airflow_provider_dingtalk.operators.approval import DingTalkApprovalRefused
from airflow_provider_dingtalk.sensors.approval import DingTalkApprovalSensor
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger
from tests.approvals.conftest import DEMO, FORM


def start(hook: DingTalkApprovalHook, **form: object) -> str:
    values = form_component_values({**FORM, **form})
    return hook.start_instance(
        process_code=DEMO, originator_user_id="user1", dept_id=-1, form_component_values=values
    )


def test_by_id_pokes_until_decided(hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator) -> None:
    instance_id = start(hook)
    sensor = DingTalkApprovalSensor(task_id="s", instance_id=instance_id)
    assert sensor.poke({}) is False  # type: ignore[arg-type]
    dingtalk_conn.approve(instance_id, "user2", "go")
    done = sensor.poke({})  # type: ignore[arg-type]
    assert done.is_done and done.xcom_value["decided_by"] == ["user2"]  # type: ignore[union-attr]


def test_by_search_finds_the_one_by_business_id(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    sensor = DingTalkApprovalSensor(
        task_id="s", process_code=DEMO, originator_user_id="user1", started_after=since.isoformat()
    )
    assert sensor.poke({}) is False  # type: ignore[arg-type]  # nothing started yet
    first, second = start(hook), start(hook, Rows=5)
    with pytest.raises(DingTalkValidationError, match="2 approvals match"):
        sensor.poke({})  # type: ignore[arg-type]
    number = hook.get_instance(second).business_id
    sensor = DingTalkApprovalSensor(
        task_id="s", process_code=DEMO, originator_user_id="user1", started_after=since, business_id=number
    )
    dingtalk_conn.refuse(second, "user2", "too many rows")
    with pytest.raises(DingTalkApprovalRefused, match="too many rows"):
        sensor.poke({})  # type: ignore[arg-type]
    assert sensor.instance_id == second != first


def test_deferrable_waits_on_the_trigger_without_revoking(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    instance_id = start(hook)
    with pytest.raises(TaskDeferred) as deferred:
        DingTalkApprovalSensor(task_id="s", instance_id=instance_id, deferrable=True).execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, DingTalkApprovalTrigger) and trigger.revoke_on_kill is False
    assert trigger.use_stream is None  # Stream wake-ups wherever the triggerer can run them


def test_deferred_wait_without_stream(hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator) -> None:
    instance_id = start(hook)
    sensor = DingTalkApprovalSensor(task_id="s", instance_id=instance_id, deferrable=True, use_stream=False)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})  # type: ignore[arg-type]
    assert deferred.value.trigger.serialize()[1]["use_stream"] is False


def test_needs_an_id_or_a_search() -> None:
    with pytest.raises(DingTalkValidationError, match="either instance_id"):
        DingTalkApprovalSensor(task_id="s", process_code=DEMO)
