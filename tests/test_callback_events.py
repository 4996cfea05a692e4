"""End to end with Airflow's DB: DingTalk event → receiver → asset event → the example DAG is queued."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from airflow_provider_dingtalk.testing.emulator import DingTalkEmulator
from tests.airflow_state import reset_approvals

EXAMPLES = Path(__file__).parent.parent / "example_dags" / "example_dingtalk_callbacks.py"
EVENT = {
    "EventType": "bpms_instance_change",
    "processInstanceId": "p-42",
    "type": "finish",
    "result": "agree",
}


def test_approval_event_queues_the_dag_scheduled_on_it(
    dingtalk_airflow_db: None, dingtalk_emulator: DingTalkEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    for key, value in dingtalk_emulator.airflow_env().items():
        monkeypatch.setenv(key, value)
    bag = DagBag(dag_folder=str(EXAMPLES))
    assert not bag.import_errors
    # The register DAG succeeds: DingTalk's check_url reached the receiver and got "success".
    assert str(bag.dags["example_dingtalk_register_callback"].test().state) in (
        "success",
        "DagRunState.SUCCESS",
    )
    # Running the consumer once writes it (and its asset) to the DB, as the dag processor would.
    consumer = bag.dags["example_dingtalk_on_approval"]
    assert str(consumer.test().state) in ("success", "DagRunState.SUCCESS")
    with create_session() as session:
        session.get(DagModel, consumer.dag_id).is_paused = False

    reset_approvals()  # other tests in the session pushed approval events into the same DB
    assert dingtalk_emulator.push_event(EVENT)
    assert dingtalk_emulator.push_event(EVENT)  # DingTalk's retry of the same event: acknowledged, not re-run

    with create_session() as session:
        asset = session.scalars(
            select(AssetModel).where(AssetModel.uri == "dingtalk://events/bpms_instance_change")
        ).one()
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        assert [e.extra["payload"] for e in events] == [EVENT]
        assert events[0].extra["event_type"] == "bpms_instance_change"
        queued = session.scalars(select(AssetDagRunQueue).where(AssetDagRunQueue.asset_id == asset.id)).all()
        # Queued once; other DAGs of the session scheduled on the same asset (the Stream example) may be too.
        assert [q.target_dag_id for q in queued].count(consumer.dag_id) == 1
