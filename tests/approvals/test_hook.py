"""DingTalkApprovalHook against the emulator's workflow API over real HTTP."""

from __future__ import annotations

import time

import pytest

from airflow_provider_dingtalk.approvals import form_component_values
from airflow_provider_dingtalk.exceptions import DingTalkAPIError
from airflow_provider_dingtalk.hooks.approval import (
    INSTANCES_PATH,
    TERMINATE_PATH,
    ApprovalCreateUnanswered,
    DingTalkApprovalHook,
)
from airflow_provider_dingtalk.retry import RetryPolicy
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator, EmulatorTime
from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import workflow
from tests.approvals.conftest import DEMO, FORM


def start(hook: DingTalkApprovalHook, **kwargs: object) -> str:
    values = form_component_values(FORM, hook.get_form_schema(DEMO))
    args: dict[str, object] = {"process_code": DEMO, "originator_user_id": "user1", "dept_id": -1}
    return hook.start_instance(form_component_values=values, **(args | kwargs))  # type: ignore[arg-type]


def test_start_then_agree(hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator) -> None:
    instance_id = start(hook)
    assert hook.get_instance(instance_id).outcome == "running"
    dingtalk_conn.approve(instance_id, "user2", "ok to export")
    got = hook.get_instance(instance_id)
    assert (got.status, got.result, got.outcome) == ("COMPLETED", "agree", "agree")
    assert got.to_dict()["decided_by"] == ["user2"] and got.to_dict()["remarks"] == ["ok to export"]
    assert got.finish_time and got.business_id


def test_explicit_and_approvers_need_everyone(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    instance_id = start(
        hook,
        dept_id=None,
        approvers=[{"action_type": "AND", "user_ids": ["user3", "user4"]}],
        cc_list=["user5"],
    )
    body = dingtalk_conn.requests(INSTANCES_PATH)[-1].body
    assert body["approvers"] == [{"actionType": "AND", "userIds": ["user3", "user4"]}] and body["ccList"] == [
        "user5"
    ]
    dingtalk_conn.approve(instance_id, "user3")
    assert hook.get_instance(instance_id).outcome == "running"
    dingtalk_conn.approve(instance_id, "user4")
    assert hook.get_instance(instance_id).to_dict()["decided_by"] == ["user3", "user4"]


def test_refuse_and_revoke_with_the_15_second_rule(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    refused = start(hook)
    dingtalk_conn.refuse(refused, "user2", "not this quarter")
    assert hook.get_instance(refused).to_dict()["outcome"] == "refuse"
    revoked = start(hook)
    with pytest.raises(DingTalkAPIError) as err:
        hook.terminate_instance(revoked, remark="too early")
    assert err.value.code == "aflowProcessInstStatusException" and err.value.http_status == 400
    dingtalk_conn.advance(15)
    hook.terminate_instance(revoked, remark="no longer needed")
    got = hook.get_instance(revoked)
    assert got.outcome == "terminated" and got.to_dict()["remarks"] == ["no longer needed"]
    assert dingtalk_conn.requests(TERMINATE_PATH)[-1].body["isSystem"] is True


def test_dingtalk_refuses_what_the_form_check_would(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    with pytest.raises(DingTalkAPIError) as err:
        hook.start_instance(
            process_code=DEMO,
            originator_user_id="user1",
            dept_id=-1,
            form_component_values=[{"name": "Dataset", "value": "x"}],
        )
    assert err.value.code == "formConverterError" and "Rows" in str(err.value)
    with pytest.raises(DingTalkAPIError) as err:
        hook.get_form_schema("PROC-NOPE")
    assert err.value.code == "formNotExist"
    assert workflow(dingtalk_conn.state).instances == {}


def test_throttling_is_a_403_that_the_hook_waits_out(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    instance_id = start(hook)
    workflow(dingtalk_conn.state).qps_limit = 3
    # the backoff's waits pass on the emulator's clock, whose 1-second throttle windows they outlast
    hook = DingTalkApprovalHook(
        retry_policy=RetryPolicy(initial_wait=1.0, sleep=EmulatorTime(dingtalk_conn).sleep)
    )
    for _ in range(6):
        hook.get_instance(instance_id)
    statuses = [r.status for r in dingtalk_conn.requests(INSTANCES_PATH) if r.method == "GET"]
    assert 403 in statuses and statuses[-1] == 200
    throttled = next(r for r in dingtalk_conn.requests(INSTANCES_PATH) if r.status == 403)
    assert throttled.response["code"] == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"


def test_a_lost_create_answer_is_not_repeated_and_the_instance_can_be_found(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    since = int(time.time() * 1000) - 1000
    dingtalk_conn.inject(INSTANCES_PATH, drop="after")
    with pytest.raises(ApprovalCreateUnanswered):
        start(hook)
    assert len(workflow(dingtalk_conn.state).instances) == 1  # created once, not retried
    values = form_component_values(FORM, hook.get_form_schema(DEMO))
    (found,) = hook.find_instances(
        process_code=DEMO, originator_user_id="user1", start_time=since, form_component_values=values
    )
    assert found.instance_id in workflow(dingtalk_conn.state).instances
    assert hook.find_instances(
        process_code=DEMO, originator_user_id="user1", start_time=since, business_id=found.business_id
    )


def test_execute_a_task_as_its_assignee(hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator) -> None:
    instance_id = start(hook)
    task_id = dingtalk_conn.approval_instances()[0]["tasks"][0]["taskId"]
    with pytest.raises(DingTalkAPIError) as err:
        hook.execute_task(instance_id, task_id=task_id, actioner_user_id="user9", result="agree")
    assert err.value.code == "invalidInstanceExecuteActionerUserId"
    hook.execute_task(
        instance_id, task_id=task_id, actioner_user_id="user2", result="agree", remark="via API"
    )
    assert hook.get_instance(instance_id).outcome == "agree"


def test_list_pages_through_every_instance(
    hook: DingTalkApprovalHook, dingtalk_conn: DingTalkEmulator
) -> None:
    since = int(time.time() * 1000) - 1000
    workflow(dingtalk_conn.state).qps_limit = 100  # 23 creates in well under a second
    ids = [start(hook) for _ in range(23)]
    assert hook.list_instance_ids(process_code=DEMO, start_time=since) == ids
    assert hook.list_instance_ids(process_code=DEMO, start_time=since, user_ids=["user7"]) == []
