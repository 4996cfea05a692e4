"""Helpers for tests that share Airflow's one metadata DB within a session."""

from __future__ import annotations

CONSUMER = "example_dingtalk_on_approval"
APPROVALS_URI = "dingtalk://events/bpms_instance_change"


def reset_approvals() -> None:
    """Remove the approval asset's events, queue and the consumer's runs: the session shares one DB."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    with create_session() as session:
        asset_ids = select(AssetModel.id).where(AssetModel.uri == APPROVALS_URI)
        session.execute(delete(DagRun).where(DagRun.dag_id == CONSUMER))
        session.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.asset_id.in_(asset_ids)))
        session.execute(delete(AssetEvent).where(AssetEvent.asset_id.in_(asset_ids)))
