"""Airflow's HITL records, read and answered in the API server's process (it has the metadata DB).

The answer goes through Airflow's own handler of ``PATCH .../taskInstances/{task}/{map_index}/
hitlDetails`` (``update_hitl_detail`` in ``airflow.api_fastapi.core_api.routes.public.hitl``), called
with the mapped Airflow user: the same row locks, the same "already answered" refusal (409), the same
option checks, the same ``responded_by``, and the same resume of the parked task as an answer in the
UI. Of what the route's dependencies add around it, the audit log entry is written here (saying the
answer came from DingTalk); the DAG permission check needs the auth manager's own user object, which
a DingTalk click has none of, so the provider's stricter rule stands in for it: only the task's
assigned users may answer (:mod:`.card_callback`), and Airflow's ``is_authorized_hitl_task`` is
still asked inside ``update_hitl_detail``.

Airflow imports happen inside the methods: this module loads with the plugin's first request.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.events.card_callback import AlreadyAnswered, HITLRecord, NotAllowed
from airflow_provider_dingtalk.messages.hitl_card import Answer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["AirflowHITLAnswers"]

# Where a HITL task waits: awaiting_input (Airflow 3.3+), deferred to HITLTrigger (before).
_PARKED = {"awaiting_input", "deferred"}


class _AnsweringUser:
    """The Airflow user a DingTalk user is mapped to, as Airflow's auth managers see a user."""

    def __init__(self, user_id: str, name: str) -> None:
        self._id, self._name = user_id, name

    def get_id(self) -> str:
        return self._id

    def get_name(self) -> str:
        return self._name


class AirflowHITLAnswers:
    """Reads and answers HITL records in the metadata DB, as the REST API does."""

    def get(self, ti_id: str) -> HITLRecord | None:
        from airflow.utils.session import create_session

        try:
            key = uuid.UUID(ti_id)
        except ValueError:
            return None
        with create_session() as session:
            return _record(session, key)

    def answer(self, record: HITLRecord, *, option: str, user_id: str, user_name: str) -> HITLRecord:
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.models.log import Log
        from airflow.utils.session import create_session
        from fastapi import HTTPException

        user = _AnsweringUser(user_id, user_name)
        with create_session() as session:
            try:
                update_hitl_detail(
                    dag_id=record.dag_id,
                    dag_run_id=record.run_id,
                    task_id=record.task_id,
                    update_hitl_detail_payload=UpdateHITLDetailPayload(
                        chosen_options=[option], params_input={}
                    ),
                    user=user,  # type: ignore[arg-type]
                    session=session,
                    map_index=record.map_index,
                )
            except HTTPException as exc:
                session.rollback()
                if exc.status_code == 409:
                    raise AlreadyAnswered(_record(session, uuid.UUID(record.ti_id))) from None
                raise NotAllowed(f"Airflow refused the answer: {exc.detail}") from None
            session.add(
                Log(
                    event="update_hitl_detail",
                    owner=user_name,
                    extra=json.dumps({"chosen_options": [option], "via": "DingTalk interactive card"}),
                    dag_id=record.dag_id,
                    task_id=record.task_id,
                    run_id=record.run_id,
                    map_index=record.map_index,
                )
            )
            session.flush()
            done = _record(session, uuid.UUID(record.ti_id))
        return done or record

    def __repr__(self) -> str:
        return "AirflowHITLAnswers()"


def _record(session: Session, ti_id: uuid.UUID) -> HITLRecord | None:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance

    ti = session.get(TaskInstance, ti_id)
    detail = session.get(HITLDetail, ti_id) if ti is not None else None
    if ti is None or detail is None:
        return None
    answer = None
    if detail.responded_at is not None:
        by: Any = detail.responded_by
        answer = Answer(
            chosen_options=tuple(detail.chosen_options or ()),
            responded_by=(by.get("name") or by.get("id")) if isinstance(by, dict) else None,
            responded_at=detail.responded_at,
        )
    state = str(ti.state.value if hasattr(ti.state, "value") else ti.state) if ti.state else None
    parked_for = None
    if state in _PARKED and ti.updated_at is not None:  # the park is the last write to the row
        parked_for = (datetime.now(UTC) - ti.updated_at).total_seconds()
    return HITLRecord(
        ti_id=str(ti_id),
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index,
        options=tuple(detail.options or ()),
        multiple=bool(detail.multiple),
        has_params=bool(detail.params),
        assigned_users={str(u["id"]): str(u.get("name") or u["id"]) for u in detail.assigned_users},
        answer=answer,
        ti_state=state,
        parked_for=parked_for,
    )
