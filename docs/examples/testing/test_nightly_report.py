from __future__ import annotations

from airflow.dag_processing.dagbag import DagBag

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator


def test_the_report_reaches_the_owners_and_the_group(dingtalk_airflow: DingTalkEmulator) -> None:
    dag = DagBag().get_dag("nightly_report")  # from dingtalk_dags_folder
    assert dag is not None

    assert dag.test().state == "success"

    work = dingtalk_airflow.inbox("work_notification")
    assert sorted(d.target for d in work) == ["user1", "user2"]
    assert work[0].message["markdown"]["title"] == "Nightly report"
    [task] = dingtalk_airflow.tasks().values()  # one send task, two people reached
    assert sorted(task.delivered) == ["user1", "user2"]
    [group] = dingtalk_airflow.inbox("custom_robot")
    assert group.message["text"]["content"] == "Nightly report is out"


def test_a_refused_message_fails_the_task(dingtalk_airflow: DingTalkEmulator) -> None:
    dag = DagBag().get_dag("nightly_report")
    assert dag is not None
    # The robot's token was removed in DingTalk: the second task must fail, the first still sends.
    dingtalk_airflow.inject("/robot/send", errcode=300001, errmsg="token is not exist", times=10)

    assert dag.test().state == "failed"

    assert len(dingtalk_airflow.inbox("work_notification")) == 2
    assert dingtalk_airflow.inbox("custom_robot") == []
    assert dingtalk_airflow.calls("/robot/send") >= 1
