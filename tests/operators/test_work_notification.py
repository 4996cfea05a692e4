"""DingTalkMessageOperator and friends against the emulator: templating, uploads, waiting, reporting."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_dingtalk import messages as m
from airflow_provider_dingtalk.exceptions import DingTalkError, DingTalkValidationError
from airflow_provider_dingtalk.operators.work_notification import (
    DingTalkMessageOperator,
    DingTalkRecallMessageOperator,
    DingTalkUpdateStatusBarOperator,
)
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from airflow_provider_dingtalk.testing.emulator.endpoints.media import media
from airflow_provider_dingtalk.testing.emulator.endpoints.work_notification import work_notifications
from airflow_provider_dingtalk.triggers.work_notification import DingTalkDeliveryTrigger

CONTEXT: dict[str, Any] = {"run_id": "manual__42", "ds": "2025-01-02", "people": "user1,user2"}


def inbox(emulator: DingTalkEmulator) -> list[tuple[str, dict[str, Any]]]:
    return [(d.target, d.message) for d in emulator.inbox("work_notification")]


def render(op: DingTalkMessageOperator | DingTalkUpdateStatusBarOperator) -> None:
    with DAG(dag_id="t", schedule=None, start_date=datetime(2025, 1, 1)):
        pass
    op.render_template_fields(CONTEXT)  # type: ignore[arg-type]


def test_text_shorthand_returns_task_ids(dingtalk_conn: DingTalkEmulator) -> None:
    op = DingTalkMessageOperator(task_id="t", text="hi", userid_list=["user1"])
    task_ids = op.execute({})  # type: ignore[arg-type]
    assert inbox(dingtalk_conn) == [("user1", {"msgtype": "text", "text": {"content": "hi"}})]
    assert task_ids == [dingtalk_conn.inbox()[0].meta["task_id"]]


def test_templates_render_message_fields_and_recipients(dingtalk_conn: DingTalkEmulator) -> None:
    card = m.ActionCard(
        title="Run {{ run_id }}",
        text="on {{ ds }}",
        buttons=[m.Button(title="Open", url="https://e.com/{{ run_id }}")],
    )
    op = DingTalkMessageOperator(
        task_id="t", message=card, userid_list="{{ people }}", agent_id="{{ 100001 }}"
    )
    render(op)
    op.execute({})  # type: ignore[arg-type]
    [(first, msg), (second, _)] = inbox(dingtalk_conn)
    assert (first, second) == ("user1", "user2")
    assert msg["action_card"]["title"] == "Run manual__42"
    assert msg["action_card"]["markdown"] == "on 2025-01-02"
    assert msg["action_card"]["btn_json_list"] == [
        {"title": "Open", "action_url": "https://e.com/manual__42"}
    ]


def test_templates_render_a_raw_dict_and_markdown(dingtalk_conn: DingTalkEmulator) -> None:
    raw = DingTalkMessageOperator(
        task_id="r", message={"msgtype": "text", "text": {"content": "{{ run_id }}"}}, userid_list=["user1"]
    )
    md = DingTalkMessageOperator(
        task_id="m", markdown="**{{ ds }}**", title="T {{ run_id }}", userid_list=["user2"]
    )
    for op in (raw, md):
        render(op)
        op.execute({})  # type: ignore[arg-type]
    assert inbox(dingtalk_conn) == [
        ("user1", {"msgtype": "text", "text": {"content": "manual__42"}}),
        ("user2", {"msgtype": "markdown", "markdown": {"title": "T manual__42", "text": "**2025-01-02**"}}),
    ]


def test_local_file_is_uploaded_first(dingtalk_conn: DingTalkEmulator, tmp_path: Path) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 fake")
    DingTalkMessageOperator(task_id="t", message=m.File(path=str(report)), userid_list=["user1"]).execute({})  # type: ignore[arg-type]
    [(_, msg)] = inbox(dingtalk_conn)
    upload = media(dingtalk_conn.state).uploads[msg["file"]["media_id"]]
    assert upload.content == b"%PDF-1.4 fake" and upload.media_type == "file"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"text": "a", "markdown": "b", "title": "c"},
        {"markdown": "b"},
        {"text": "a", "title": "c"},
        {"text": "a", "poll_interval": 0},
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict[str, Any]) -> None:
    with pytest.raises(DingTalkValidationError):
        DingTalkMessageOperator(task_id="t", userid_list=["user1"], **kwargs)


def test_wait_for_delivery_in_worker_logs_forbidden_and_fails(
    dingtalk_conn: DingTalkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    work_notifications(dingtalk_conn.state).delivery_seconds = 0.3  # still sending at the first poll
    DingTalkMessageOperator(task_id="a", text="same", userid_list=["user1"]).execute({})  # type: ignore[arg-type]
    op = DingTalkMessageOperator(
        task_id="b",
        text="same",
        userid_list=["user1", "user2", "ghost"],
        fail_on_undelivered=True,
        poll_interval=0.1,
        timeout=10,
    )
    with pytest.raises(DingTalkError) as err:
        op.execute({})  # type: ignore[arg-type]
    text = str(err.value)
    assert "user1 not sent, code 143106 (the same content was already sent to this user today)" in text
    assert "invalid user ids ['ghost']" in text
    assert "143106" in capsys.readouterr().out  # logged too
    progress = [r.response["progress"]["status"] for r in dingtalk_conn.requests() if "progress" in r.path]
    assert progress[0] == 1 and progress[-1] == 2  # it really waited for DingTalk to finish


def test_wait_for_delivery_succeeds_when_all_delivered(dingtalk_conn: DingTalkEmulator) -> None:
    work_notifications(dingtalk_conn.state).delivery_seconds = 0.3  # still sending at the first poll
    op = DingTalkMessageOperator(
        task_id="t", text="ok", userid_list=["user1"], fail_on_undelivered=True, poll_interval=0.1
    )
    task_ids = op.execute({})  # type: ignore[arg-type]
    assert task_ids == [dingtalk_conn.inbox("work_notification")[0].meta["task_id"]]
    progress = [r.response["progress"]["status"] for r in dingtalk_conn.requests() if "progress" in r.path]
    assert progress[0] == 1 and progress[-1] == 2  # it waited for DingTalk to finish, then succeeded
    assert len(dingtalk_conn.requests("/topapi/message/corpconversation/getsendresult")) == 1


def test_wait_times_out(dingtalk_conn: DingTalkEmulator) -> None:
    work_notifications(dingtalk_conn.state).delivery_seconds = 3600
    op = DingTalkMessageOperator(
        task_id="t",
        text="slow",
        userid_list=["user1"],
        wait_for_delivery=True,
        poll_interval=0.1,
        timeout=0.3,
    )
    with pytest.raises(DingTalkError, match="had not finished sending"):
        op.execute({})  # type: ignore[arg-type]


def test_deferrable_defers_to_the_trigger_and_completes(dingtalk_conn: DingTalkEmulator) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    op = DingTalkMessageOperator(
        task_id="t", text="later", userid_list=["user1", "ghost"], fail_on_undelivered=True, deferrable=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, DingTalkDeliveryTrigger) and deferred.value.method_name == "execute_complete"
    assert len(dingtalk_conn.inbox()) == 1  # the send happened before deferring
    event = {"status": "done", "task_ids": trigger.task_ids, "results": {}}
    assert op.execute_complete({}, event) == trigger.task_ids  # type: ignore[arg-type]
    with pytest.raises(DingTalkError, match="had not finished"):
        op.execute_complete({}, {"status": "timeout", "task_ids": [1], "pending": [1]})  # type: ignore[arg-type]


def test_recall_and_status_bar_operators_take_rendered_xcom(dingtalk_conn: DingTalkEmulator) -> None:
    oa = m.OA(message_url="https://e.com", head_text="ETL", status_value="Running")
    task_ids = DingTalkMessageOperator(task_id="s", message=oa, userid_list=["user1"]).execute({})  # type: ignore[arg-type]
    bar = DingTalkUpdateStatusBarOperator(task_id="b", task_ids=str(task_ids), status_value="Done {{ ds }}")
    render(bar)
    assert bar.execute({}) == task_ids  # type: ignore[arg-type]
    task = work_notifications(dingtalk_conn.state).tasks[task_ids[0]]
    assert task.status_bar == {"status_value": "Done 2025-01-02"}
    DingTalkRecallMessageOperator(task_id="r", task_ids=task_ids[0]).execute({})  # type: ignore[arg-type]
    assert task.recalled
    with pytest.raises(DingTalkValidationError):
        DingTalkRecallMessageOperator(task_id="x", task_ids="None").execute({})  # type: ignore[arg-type]


def test_example_dag_runs_to_success(dingtalk_conn: DingTalkEmulator, dingtalk_airflow_db: None) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag_file = Path(__file__).parents[2] / "example_dags" / "example_dingtalk_work_notification.py"
    dag = DagBag(dag_folder=str(dag_file)).get_dag("example_dingtalk_work_notification")
    assert dag is not None
    run = dag.test()
    assert run.state == "success"
    received = inbox(dingtalk_conn)
    types = [msg["msgtype"] for _, msg in received]
    assert {"text", "markdown", "action_card", "oa"} <= set(types)
    # markdown also went to department 1, whose member user1 is in the user list: shown to them once
    markdown_to = [target for target, msg in received if msg["msgtype"] == "markdown"]
    assert markdown_to == ["user1", "user2"]
    oa_task = next(d.meta["task_id"] for d in dingtalk_conn.inbox() if d.message["msgtype"] == "oa")
    assert work_notifications(dingtalk_conn.state).tasks[oa_task].status_bar == {
        "status_value": "Done",
        "status_bg": "0xFF00AA00",
    }


def test_deferrable_defaults_to_airflows_default_deferrable() -> None:
    """Like Airflow's own operators: ``[operators] default_deferrable`` decides when the DAG does not."""
    import os
    import subprocess
    import sys

    code = (
        "from airflow_provider_dingtalk.operators.work_notification import DingTalkMessageOperator as O\n"
        "print(O(task_id='t', text='x', userid_list=['u']).deferrable)"
    )
    # The default is read at import, as Airflow's operators read it: a fresh process for the other setting.
    from airflow.configuration import conf

    assert not conf.getboolean("operators", "default_deferrable")
    assert DingTalkMessageOperator(task_id="t", text="x", userid_list=["u"]).deferrable is False
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True"


def _lost_first_answer(emulator: DingTalkEmulator) -> None:
    """DingTalk sends the first attempt but its answer is lost; the retry is a same-day duplicate."""
    from airflow_provider_dingtalk.hooks.work_notification import SEND_PATH

    emulator.inject(SEND_PATH, drop="after")


def test_fail_on_undelivered_passes_when_a_lost_answer_made_the_retry_a_duplicate(
    dingtalk_conn: DingTalkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _lost_first_answer(dingtalk_conn)
    op = DingTalkMessageOperator(
        task_id="t", text="once", userid_list=["user1"], fail_on_undelivered=True, poll_interval=0.2
    )
    assert len(op.execute({})) == 1  # type: ignore[arg-type]
    assert [d.target for d in dingtalk_conn.inbox("work_notification")] == ["user1"]
    assert len(dingtalk_conn.requests("/topapi/message/corpconversation/asyncsend_v2")) == 2
    out = capsys.readouterr().out
    assert "user1 got it from the first attempt, whose answer was lost" in out


def test_the_same_excuse_holds_when_deferred(dingtalk_conn: DingTalkEmulator) -> None:
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    _lost_first_answer(dingtalk_conn)
    op = DingTalkMessageOperator(
        task_id="t", text="once", userid_list=["user1"], fail_on_undelivered=True, deferrable=True,
        poll_interval=0.2,
    )  # fmt: skip
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})  # type: ignore[arg-type]

    async def first_event() -> dict[str, Any]:
        async for event in deferred.value.trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first_event())
    assert op.execute_complete({}, event, **(deferred.value.kwargs or {})) == event["task_ids"]  # type: ignore[arg-type]


def test_a_duplicate_without_a_lost_answer_still_fails(dingtalk_conn: DingTalkEmulator) -> None:
    DingTalkMessageOperator(task_id="a", text="twice", userid_list=["user1"]).execute({})  # type: ignore[arg-type]
    op = DingTalkMessageOperator(
        task_id="b", text="twice", userid_list=["user1"], fail_on_undelivered=True, poll_interval=0.2
    )
    with pytest.raises(DingTalkError, match="143106"):
        op.execute({})  # type: ignore[arg-type]
