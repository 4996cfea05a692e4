"""DingTalkApprovalOperator against the emulator: outcomes, timeouts, kill, retries, bad forms."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_dingtalk.exceptions import DingTalkError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.approval import INSTANCES_PATH, LIST_IDS_PATH, SCHEMA_PATH
from airflow_provider_dingtalk.operators.approval import (
    DingTalkApprovalOperator,
    DingTalkApprovalRefused,
    DingTalkApprovalRevoked,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.workflow import workflow
from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger
from tests.approvals.conftest import DEMO, FORM, StateStore, context, open_instance


def operator(**kwargs: Any) -> DingTalkApprovalOperator:
    args: dict[str, Any] = {
        "task_id": "approve",
        "process_code": DEMO,
        "originator_user_id": "user1",
        "dept_id": -1,
        "form_values": FORM,
        "deferrable": False,
        "poll_interval": 0.05,
    }
    return DingTalkApprovalOperator(**(args | kwargs))


def creates(emulator: DingTalkEmulator) -> int:
    return len([r for r in emulator.requests(INSTANCES_PATH) if r.method == "POST"])


def decide_soon(emulator: DingTalkEmulator, action: str, remark: str = "") -> threading.Thread:
    """An approver acting in DingTalk while the task waits."""

    def act() -> None:
        while not [i for i in emulator.approval_instances() if i["status"] == "RUNNING"]:
            time.sleep(0.02)
        instance = open_instance(emulator)
        if action == "revoke":
            emulator.advance(15)
            emulator.revoke(instance["instanceId"], remark)
        else:
            getattr(emulator, action)(instance["instanceId"], "user2", remark)

    thread = threading.Thread(target=act)
    thread.start()
    return thread


def test_agree_returns_the_outcome(dingtalk_conn: DingTalkEmulator) -> None:
    decide_soon(dingtalk_conn, "approve", "fine")
    ctx = context(StateStore())
    outcome = operator().execute(ctx)  # type: ignore[arg-type]
    assert (
        outcome["outcome"] == "agree"
        and outcome["decided_by"] == ["user2"]
        and outcome["remarks"] == ["fine"]
    )
    assert outcome["finish_time"] and outcome["business_id"]
    assert ctx["ti"].xcom["approval_instance_id"] == outcome["instance_id"]
    sent = next(r.body for r in dingtalk_conn.requests(INSTANCES_PATH) if r.method == "POST")
    assert {"name": "Rows", "value": "1200"} in sent["formComponentValues"]


def test_refuse_fails_without_retries_or_returns_for_a_branch(dingtalk_conn: DingTalkEmulator) -> None:
    decide_soon(dingtalk_conn, "refuse", "not now")
    with pytest.raises(DingTalkApprovalRefused, match="refused by user2 \\(not now\\)") as err:
        operator().execute(context(StateStore()))  # type: ignore[arg-type]
    assert isinstance(err.value, AirflowFailException)
    decide_soon(dingtalk_conn, "refuse")
    assert operator(fail_on_refuse=False).execute(context(StateStore()))["outcome"] == "refuse"  # type: ignore[arg-type]


def test_revoke_fails_with_the_reason(dingtalk_conn: DingTalkEmulator) -> None:
    decide_soon(dingtalk_conn, "revoke", "wrong dataset")
    with pytest.raises(DingTalkApprovalRevoked, match="revoked by user1 \\(wrong dataset\\)"):
        operator().execute(context(StateStore()))  # type: ignore[arg-type]


def test_timeout_says_so_and_leaves_the_instance_for_the_retry(dingtalk_conn: DingTalkEmulator) -> None:
    store = StateStore()
    with pytest.raises(DingTalkError, match=r"not decided within 0\.2 s\. It is still open"):
        operator(timeout=0.2).execute(context(store))  # type: ignore[arg-type]
    assert open_instance(dingtalk_conn)["status"] == "RUNNING"
    decide_soon(dingtalk_conn, "approve")
    outcome = operator().execute(context(store, try_number=2))  # type: ignore[arg-type]
    assert outcome["outcome"] == "agree" and creates(dingtalk_conn) == 1


def test_timeout_with_terminate_revokes_after_dingtalks_15_seconds(
    dingtalk_conn: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the 15-second wait passes on the emulator's clock
        slept.append(seconds)
        dingtalk_conn.advance(seconds)

    monkeypatch.setattr("airflow_provider_dingtalk.triggers.approval.time.sleep", sleep)
    with pytest.raises(DingTalkError, match="was revoked"):
        operator(timeout=0.1, terminate_on_timeout=True).execute(context(StateStore()))  # type: ignore[arg-type]
    (instance,) = dingtalk_conn.approval_instances()
    assert instance["status"] == "TERMINATED" and 14 < slept[-1] <= 16


def test_kill_revokes_the_instance(dingtalk_conn: DingTalkEmulator) -> None:
    op = operator(timeout=0.1)
    with pytest.raises(DingTalkError):
        op.execute(context(StateStore()))  # type: ignore[arg-type]
    dingtalk_conn.advance(15)
    op.on_kill()
    assert dingtalk_conn.approval_instances()[0]["status"] == "TERMINATED"


def test_retry_continues_with_the_same_instance(dingtalk_conn: DingTalkEmulator) -> None:
    store = StateStore()
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute(context(store))  # type: ignore[arg-type]
    # the worker died; the retry reads the store (its XComs were cleared) and waits for the same one
    decide_soon(dingtalk_conn, "approve")
    assert operator().execute(context(store, try_number=2))["outcome"] == "agree"  # type: ignore[arg-type]
    assert creates(dingtalk_conn) == 1


def test_a_lost_create_answer_leaves_one_instance(dingtalk_conn: DingTalkEmulator) -> None:
    dingtalk_conn.inject(INSTANCES_PATH, drop="after")  # DingTalk created it; the answer never came
    with pytest.raises(TaskDeferred) as deferred:
        operator(deferrable=True).execute(context(StateStore()))  # type: ignore[arg-type]
    (instance,) = dingtalk_conn.approval_instances()
    assert deferred.value.trigger.instance_id == instance["instanceId"]
    assert creates(dingtalk_conn) == 1 and dingtalk_conn.calls(LIST_IDS_PATH) == 1


def test_the_stream_switch_reaches_the_trigger(dingtalk_conn: DingTalkEmulator) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        operator(deferrable=True, use_stream=False).execute(context(StateStore()))  # type: ignore[arg-type]
    assert deferred.value.trigger.serialize()[1]["use_stream"] is False


def test_a_create_lost_before_dingtalk_got_it_is_sent_again(dingtalk_conn: DingTalkEmulator) -> None:
    dingtalk_conn.inject(INSTANCES_PATH, drop="before")
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute(context(StateStore()))  # type: ignore[arg-type]
    assert len(dingtalk_conn.approval_instances()) == 1 and creates(dingtalk_conn) == 2


def test_without_a_state_store_a_retry_finds_its_instance_in_dingtalk(
    dingtalk_conn: DingTalkEmulator,
) -> None:
    """Airflow 3.2 has no task_state_store: the retry looks for the instance with the list API."""
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute(context(None))  # type: ignore[arg-type]
    with pytest.raises(TaskDeferred) as deferred:
        operator(deferrable=True).execute(context(None, try_number=2))  # type: ignore[arg-type]
    assert creates(dingtalk_conn) == 1
    assert deferred.value.trigger.instance_id == dingtalk_conn.approval_instances()[0]["instanceId"]


def test_a_retry_after_a_revoke_starts_a_new_instance(dingtalk_conn: DingTalkEmulator) -> None:
    store = StateStore()
    decide_soon(dingtalk_conn, "revoke")
    with pytest.raises(DingTalkApprovalRevoked):
        operator().execute(context(store))  # type: ignore[arg-type]
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute(context(store, try_number=2))  # type: ignore[arg-type]
    assert [i["status"] for i in dingtalk_conn.approval_instances()] == ["TERMINATED", "RUNNING"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({**FORM, "Colour": "red"}, "form_values['Colour']"),
        ({"Dataset": "orders", "Destination": "S3"}, "form_values['Rows']"),
        ({**FORM, "Destination": "Mars"}, "form_values['Destination']"),
    ],
)
def test_a_bad_form_is_refused_before_anything_is_created(
    dingtalk_conn: DingTalkEmulator, form: dict[str, Any], field: str
) -> None:
    with pytest.raises(DingTalkValidationError) as err:
        operator(form_values=form).execute(context(StateStore()))  # type: ignore[arg-type]
    assert err.value.field == field
    assert dingtalk_conn.calls(SCHEMA_PATH) == 1 and creates(dingtalk_conn) == 0
    assert workflow(dingtalk_conn.state).instances == {}


def test_deferrable_by_default_with_a_trigger_that_round_trips(dingtalk_conn: DingTalkEmulator) -> None:
    op = DingTalkApprovalOperator(
        task_id="a", process_code=DEMO, originator_user_id="user1", dept_id=-1, form_values=FORM
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(StateStore()))  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, DingTalkApprovalTrigger)
    path, kwargs = trigger.serialize()
    assert DingTalkApprovalTrigger(**kwargs).serialize() == (path, kwargs)
    event = {"status": "timeout", "instance_id": trigger.instance_id}
    with pytest.raises(DingTalkError, match="still open"):
        op.execute_complete({}, event, **deferred.value.kwargs)  # type: ignore[arg-type]
