"""Wait for an OA approval someone else started: by instance id, or found by template and originator.

DAG files import this module at every parse: no hook or trigger at module level.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_dingtalk.exceptions import DingTalkValidationError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook


class DingTalkApprovalSensor(BaseSensorOperator):
    """Succeed once the approval is decided; return its outcome (as :class:`.DingTalkApprovalOperator`).

    Give ``instance_id``, or ``process_code`` + ``originator_user_id`` and a window
    (``started_after``, optionally ``started_before``) to find it with the list API; add
    ``business_id`` (the approval number DingTalk shows) when the originator started several.

    :param instance_id: the instance id.
    :param process_code: the template, to search by.
    :param originator_user_id: who started it, to search by.
    :param started_after: the window's start (a datetime, or an ISO text a template renders).
    :param started_before: the window's end; default now.
    :param business_id: the approval number (``businessId``).
    :param fail_on_refuse: fail on ``refuse``; ``False`` returns the outcome.
    :param deferrable: once the instance is known, wait on the triggerer (the shared poller).
    :param use_stream: deferred, take wake-ups from Stream events (see
        :class:`.DingTalkApprovalTrigger`); ``None``: when ``websockets`` is installed, ``False``: off.
    :param dingtalk_conn_id: a ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = (
        "instance_id",
        "process_code",
        "originator_user_id",
        "started_after",
        "started_before",
        "business_id",
        "dingtalk_conn_id",
    )

    def __init__(
        self,
        *,
        instance_id: str | None = None,
        process_code: str | None = None,
        originator_user_id: str | None = None,
        started_after: datetime | str | None = None,
        started_before: datetime | str | None = None,
        business_id: str | None = None,
        fail_on_refuse: bool = True,
        deferrable: bool = False,
        use_stream: bool | None = None,
        dingtalk_conn_id: str = "dingtalk_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        search = process_code is not None and originator_user_id is not None and started_after is not None
        if (instance_id is None) == (not search):
            raise DingTalkValidationError(
                "instance_id",
                "give either instance_id, or process_code + originator_user_id + started_after to search",
            )
        self.instance_id = instance_id
        self.process_code = process_code
        self.originator_user_id = originator_user_id
        self.started_after = started_after
        self.started_before = started_before
        self.business_id = business_id
        self.fail_on_refuse = fail_on_refuse
        self.deferrable = deferrable
        self.use_stream = use_stream
        self.dingtalk_conn_id = dingtalk_conn_id

    @cached_property
    def hook(self) -> DingTalkApprovalHook:
        from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook

        return DingTalkApprovalHook(dingtalk_conn_id=self.dingtalk_conn_id)

    def _resolve(self) -> str | None:
        """The instance id: given, or the one the search finds (``None`` while there is none yet)."""
        if self.instance_id:
            return str(self.instance_id)
        found = self.hook.find_instances(
            process_code=str(self.process_code),
            originator_user_id=str(self.originator_user_id),
            start_time=_when("started_after", self.started_after),
            end_time=_when("started_before", self.started_before) if self.started_before else None,
            business_id=self.business_id or None,
        )
        if len(found) > 1:
            numbers = [f"{i.instance_id} ({i.business_id})" for i in found]
            raise DingTalkValidationError(
                "business_id", f"{len(found)} approvals match the search: {numbers}; give business_id"
            )
        if found:
            self.instance_id = found[0].instance_id
            self.log.info("Found approval %s (%s).", found[0].instance_id, found[0].business_id)
        return self.instance_id

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from airflow_provider_dingtalk.operators.approval import finish

        instance_id = self._resolve()
        if instance_id is None:
            self.log.info("No matching approval yet.")
            return False
        instance = self.hook.get_instance(instance_id)
        if not instance.final:
            return False
        return PokeReturnValue(is_done=True, xcom_value=finish(instance, fail_on_refuse=self.fail_on_refuse))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        instance_id = self._resolve()
        if instance_id is None:  # still searching: poke until it appears, then wait on the triggerer
            return super().execute(context)
        from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger

        self.defer(
            trigger=DingTalkApprovalTrigger(
                instance_id=instance_id,
                created_at=time.time(),
                dingtalk_conn_id=self.dingtalk_conn_id,
                end_time=time.time() + float(self.timeout) if self.timeout else None,
                revoke_on_kill=False,  # not ours to revoke
                use_stream=self.use_stream,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from airflow_provider_dingtalk.approvals import ApprovalInstance
        from airflow_provider_dingtalk.exceptions import DingTalkError
        from airflow_provider_dingtalk.operators.approval import finish

        if event.get("status") == "final":
            return finish(ApprovalInstance.from_dict(event["instance"]), fail_on_refuse=self.fail_on_refuse)
        raise DingTalkError(
            f"Waiting for approval {event.get('instance_id')} ended with {event.get('status')}: "
            f"{event.get('message', 'not decided in time')}"
        )


def _when(field: str, value: datetime | str | None) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise DingTalkValidationError(field, f"{value!r} is not an ISO date and time") from None
    if not isinstance(value, datetime):
        raise DingTalkValidationError(field, "must be a datetime")
    if value.tzinfo is None:
        raise DingTalkValidationError(field, "needs a time zone (e.g. {{ data_interval_start }} has one)")
    return int(value.timestamp() * 1000)
