"""A DAG written for Airflow's dingding provider runs against the emulator with its import line changed,
on its own ``dingding`` connection (token in the password, no secret)."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

from airflow_provider_dingtalk.exceptions import DingTalkValidationError
from airflow_provider_dingtalk.operators.dingding import DingdingOperator
from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.helpers import run_dag_file

AIRFLOW_VERSION = Version(version("apache-airflow-core"))

DINGDING_DAG = Path(__file__).with_name("dingding_dag.py.txt").read_text()
OLD_IMPORT = "from airflow.providers.dingding.operators.dingding import DingdingOperator"
NEW_IMPORT = "from airflow_provider_dingtalk.operators.dingding import DingdingOperator"


@pytest.fixture
def dingding_conn(dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch) -> DingTalkEmulator:
    """``dingding_default`` as the dingding provider's docs set it up: the robot's token, no secret."""
    robot = dingtalk_emulator.add_robot("dingding", secret=False)
    conn = {"conn_type": "dingding", "host": dingtalk_emulator.url, "password": robot.token}
    monkeypatch.setenv("AIRFLOW_CONN_DINGDING_DEFAULT", json.dumps(conn))
    return dingtalk_emulator


@pytest.mark.usefixtures("dingtalk_airflow_db")
def test_a_dingding_dag_runs_with_one_line_changed(
    dingding_conn: DingTalkEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert DINGDING_DAG.count(OLD_IMPORT) == 1
    run = run_dag_file(
        DINGDING_DAG.replace(OLD_IMPORT, NEW_IMPORT), "example_dingding_operator", tmp_path, monkeypatch
    )
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    # The last task sends an unsupported type on purpose, to fire the DAG's failure callback.
    assert states.pop("msg_failure_callback") == "failed"
    assert set(states.values()) == {"success"} and len(states) == 8, states
    got = [d.message for d in dingding_conn.inbox("custom_robot")]
    by_type = sorted(m["msgtype"] for m in got)
    # Airflow 3.2 runs failure callbacks without the exception in the context (docs/alerts.rst), so
    # the DAG's own callback, which reads context['exception'], fails there before it sends.
    with_callback = Version("3.3") <= AIRFLOW_VERSION
    texts = ["text"] * (4 if with_callback else 3)
    assert by_type == ["actionCard", "actionCard", "feedCard", "link", "markdown", *texts]
    specific = next(m for m in got if "remind specific" in m.get("text", {}).get("content", ""))
    assert specific["at"]["atMobiles"] == ["156XXXXXXXX", "130XXXXXXXX"]
    if not with_callback:
        return
    callback = next(m for m in got if "FAILURE TIPS" in m.get("text", {}).get("content", ""))
    assert "msg_failure_callback" in callback["text"]["content"] and callback["at"]["isAtAll"] is True
    assert "message_type: must be one of" in callback["text"]["content"]


def test_what_dingtalk_would_ignore_is_refused_before_sending(dingding_conn: DingTalkEmulator) -> None:
    """The dingding guide's link spells picURL: DingTalk ignored it and showed no picture."""
    op = DingdingOperator(
        task_id="link",
        message_type="link",
        message={
            "title": "T",
            "text": "x",
            "messageUrl": "https://airflow.apache.org",
            "picURL": "https://p",
        },
    )
    with pytest.raises(DingTalkValidationError, match="did you mean 'picUrl'") as err:
        op.execute({})  # type: ignore[arg-type]
    assert err.value.field == "link.picURL"
    assert dingding_conn.inbox() == []
