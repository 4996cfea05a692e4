"""A DingTalk OA approval (审批) as an Airflow task: start an instance, wait until it is decided.

DAG files import this module at every parse, so it imports no hook, ``requests`` or trigger at
module level.

One instance per task and run, whatever happens to the task: its id is kept in Airflow's
``task_state_store`` (Airflow 3.3; a retry's XComs are cleared, that store is not), and a create
that got no answer is looked for with the list API (originator, template, time window and the
exact form values) before anything is created again. Without the store (Airflow 3.2) a retry looks
for its instance the same way, in the window since the run started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dingtalk.exceptions import DingTalkError, DingTalkValidationError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_dingtalk.approvals import ApprovalInstance
    from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook

STATE_KEY = "dingtalk_approval"  # in task_state_store: {"instance_id", "created_at"} or {"attempt_at"}
XCOM_INSTANCE_ID = "approval_instance_id"
CREATE_ATTEMPTS = 3
SEARCH_SLACK_MS = 60_000  # DingTalk's clock and the worker's may differ; the window starts this early


class DingTalkApprovalRefused(DingTalkError, AirflowFailException):
    """The approval was refused: final for this run, so the task fails without retrying."""

    def __init__(self, message: str, *, outcome: dict[str, Any]) -> None:
        self.outcome = outcome
        super().__init__(message)


class DingTalkApprovalRevoked(DingTalkError, AirflowFailException):
    """The approval was revoked in DingTalk (by its originator or an admin): the task fails."""

    def __init__(self, message: str, *, outcome: dict[str, Any]) -> None:
        self.outcome = outcome
        super().__init__(message)


def _seconds(value: timedelta | float | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


def finish(instance: ApprovalInstance, *, fail_on_refuse: bool) -> dict[str, Any]:
    """The task's result for a final instance: the outcome, or the failure it means."""
    outcome = instance.to_dict()
    who = ", ".join(outcome["decided_by"]) or "DingTalk"
    remarks = "; ".join(outcome["remarks"])
    said = f" ({remarks})" if remarks else ""
    if instance.outcome == "refuse" and fail_on_refuse:
        raise DingTalkApprovalRefused(
            f"Approval {instance.instance_id} ({instance.business_id}) was refused by {who}{said}. "
            "Set fail_on_refuse=False to branch on the outcome instead.",
            outcome=outcome,
        )
    if instance.outcome == "terminated":
        raise DingTalkApprovalRevoked(
            f"Approval {instance.instance_id} ({instance.business_id}) was revoked by {who}{said}.",
            outcome=outcome,
        )
    return outcome


class DingTalkApprovalOperator(BaseOperator):
    """Start a DingTalk OA approval and wait until it is decided; return the outcome.

    The outcome (the return value, so the XCom) is ``{"instance_id", "business_id", "status",
    "result", "outcome", "decided_by", "remarks", "finish_time", ...}``; ``outcome`` is ``agree``,
    ``refuse`` or ``terminated``. ``agree`` succeeds; ``refuse`` fails the task (without retries:
    the decision stands) unless ``fail_on_refuse=False``; a revoke fails it.

    :param process_code: the template's ``processCode`` (``PROC-…``, in the template editor's URL).
    :param originator_user_id: the userId who submits it (shown as the applicant).
    :param form_values: ``{label: value}``: strings, numbers, dates, lists (multi-select, contacts),
        a pair of dates (a date range, by either label), a list of row mappings (a table).
    :param dept_id: the originator's department (``-1``: root); needed unless ``approvers`` are given.
    :param approvers: nodes ``{"action_type": "AND"|"OR"|"NONE", "user_ids": [...]}`` that replace the
        template's chain.
    :param cc_list: users to copy (DingTalk uses it only with ``approvers``).
    :param cc_position: ``START``, ``FINISH`` or ``START_FINISH``.
    :param validate_form: fetch the template's form first and refuse unknown labels, missing required
        fields and options not offered before anything is created.
    :param fail_on_refuse: fail on ``refuse``; ``False`` returns the outcome (for a branch).
    :param timeout: stop waiting after this long (a timedelta or seconds); ``None``: no limit.
    :param terminate_on_timeout: revoke the instance when the wait times out (otherwise it stays open
        and a retry of the task waits for it again).
    :param revoke_on_kill: revoke the instance when the task is killed or cleared while waiting.
    :param deferrable: wait on the triggerer (default), freeing the worker slot.
    :param poll_interval: seconds between GETs when waiting in the worker.
    :param requests_per_second: the triggerer poller's budget for this connection's app.
    :param use_stream: deferred, take wake-ups from Stream events (see
        :class:`.DingTalkApprovalTrigger`); ``None``: when ``websockets`` is installed, ``False``: off.
    :param dingtalk_conn_id: a ``dingtalk`` connection.
    """

    template_fields: Sequence[str] = (
        "process_code",
        "originator_user_id",
        "form_values",
        "dept_id",
        "approvers",
        "cc_list",
        "dingtalk_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"form_values": "json", "approvers": "json"}
    ui_color = "#ff9a2e"

    def __init__(
        self,
        *,
        process_code: str,
        originator_user_id: str,
        form_values: Mapping[str, Any] | str,
        dept_id: int | str | None = None,
        approvers: Sequence[Mapping[str, Any]] | None = None,
        cc_list: Sequence[str] | str | None = None,
        cc_position: str | None = None,
        validate_form: bool = True,
        fail_on_refuse: bool = True,
        timeout: timedelta | float | None = None,
        terminate_on_timeout: bool = False,
        revoke_on_kill: bool = True,
        deferrable: bool = True,
        poll_interval: float = 30.0,
        requests_per_second: float = 10.0,
        use_stream: bool | None = None,
        dingtalk_conn_id: str = "dingtalk_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        seconds = _seconds(timeout)
        if seconds is not None and seconds <= 0:
            raise DingTalkValidationError("timeout", "must be positive (or None to wait without limit)")
        if poll_interval <= 0 or requests_per_second <= 0:
            raise DingTalkValidationError(
                "poll_interval", "poll_interval and requests_per_second must be positive"
            )
        self.process_code = process_code
        self.originator_user_id = originator_user_id
        self.form_values = form_values
        self.dept_id = dept_id
        self.approvers = approvers
        self.cc_list = cc_list
        self.cc_position = cc_position
        self.validate_form = validate_form
        self.fail_on_refuse = fail_on_refuse
        self.timeout = seconds
        self.terminate_on_timeout = terminate_on_timeout
        self.revoke_on_kill = revoke_on_kill
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.requests_per_second = requests_per_second
        self.use_stream = use_stream
        self.dingtalk_conn_id = dingtalk_conn_id
        self._started: tuple[str, float] | None = None  # (instance id, created at) once known

    @cached_property
    def hook(self) -> DingTalkApprovalHook:
        from airflow_provider_dingtalk.hooks.approval import DingTalkApprovalHook

        return DingTalkApprovalHook(dingtalk_conn_id=self.dingtalk_conn_id)

    # -- execute -------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        instance_id, created_at = self._instance(context)
        self._started = (instance_id, created_at)
        context["ti"].xcom_push(key=XCOM_INSTANCE_ID, value=instance_id)
        end_time = None if self.timeout is None else time.time() + self.timeout
        instance = self.hook.get_instance(instance_id)
        if instance.final:
            return finish(instance, fail_on_refuse=self.fail_on_refuse)
        if self.deferrable:
            from airflow_provider_dingtalk.triggers.approval import DingTalkApprovalTrigger

            self.defer(
                trigger=DingTalkApprovalTrigger(
                    instance_id=instance_id,
                    created_at=created_at,
                    dingtalk_conn_id=self.dingtalk_conn_id,
                    end_time=end_time,
                    requests_per_second=self.requests_per_second,
                    revoke_on_kill=self.revoke_on_kill,
                    use_stream=self.use_stream,
                ),
                method_name="execute_complete",
                kwargs={"created_at": created_at},
            )
        return self._wait_in_worker(instance_id, created_at, end_time)

    def execute_complete(
        self, context: Context, event: dict[str, Any], created_at: float | None = None
    ) -> dict[str, Any]:
        """Resume when :class:`.DingTalkApprovalTrigger` saw the instance final, or timed out."""
        from airflow_provider_dingtalk.approvals import ApprovalInstance

        if event.get("status") == "final":
            return finish(ApprovalInstance.from_dict(event["instance"]), fail_on_refuse=self.fail_on_refuse)
        instance_id = str(event.get("instance_id"))
        if event.get("status") == "timeout":
            return self._timed_out(instance_id, created_at or time.time())
        raise DingTalkError(f"Waiting for approval {instance_id} failed: {event.get('message')}")

    def _wait_in_worker(self, instance_id: str, created_at: float, end_time: float | None) -> dict[str, Any]:
        while True:
            instance = self.hook.get_instance(instance_id)
            if instance.final:
                return finish(instance, fail_on_refuse=self.fail_on_refuse)
            if end_time is not None and time.time() >= end_time:
                return self._timed_out(instance_id, created_at)
            self.log.info("Approval %s is still open; checking again in %ss", instance_id, self.poll_interval)
            time.sleep(self.poll_interval)

    def _timed_out(self, instance_id: str, created_at: float) -> dict[str, Any]:
        """The wait ran out: fail, revoking first if asked; an instance decided just now is its outcome."""
        from airflow_provider_dingtalk.triggers.approval import revoke_instance

        waited = f"within {self.timeout:g} s" if self.timeout is not None else "in time"
        if self.terminate_on_timeout:
            remark = f"Not decided {waited}; revoked by Airflow."
            if not revoke_instance(self.hook, instance_id, created_at=created_at, remark=remark):
                return finish(self.hook.get_instance(instance_id), fail_on_refuse=self.fail_on_refuse)
            raise DingTalkError(f"Approval {instance_id} was not decided {waited} and was revoked.")
        raise DingTalkError(
            f"Approval {instance_id} was not decided {waited}. It is still open in DingTalk: a retry of "
            "this task waits for the same instance; terminate_on_timeout=True revokes it instead."
        )

    def on_kill(self) -> None:
        """Killed while waiting in the worker: revoke the instance this task started."""
        if self._started is None or not self.revoke_on_kill:
            return
        from airflow_provider_dingtalk.triggers.approval import revoke_instance

        instance_id, created_at = self._started
        if revoke_instance(
            self.hook,
            instance_id,
            created_at=created_at,
            remark="The Airflow task waiting for it was stopped.",
        ):
            self.log.info("Revoked approval %s: the task was stopped.", instance_id)

    # -- one instance per task and run ---------------------------------------------------------

    def _form_values(self) -> Mapping[str, Any]:
        values = self.form_values
        if isinstance(values, str):  # a templated mapping rendered to JSON text
            try:
                values = json.loads(values)
            except ValueError:
                raise DingTalkValidationError("form_values", "a string must be a JSON object") from None
        if not isinstance(values, Mapping):
            raise DingTalkValidationError("form_values", "must be a mapping of label to value")
        return values

    def _payload_values(self) -> list[dict[str, str]]:
        from airflow_provider_dingtalk.approvals import form_component_values

        schema = self.hook.get_form_schema(self.process_code) if self.validate_form else None
        return form_component_values(self._form_values(), schema)

    def _instance(self, context: Context) -> tuple[str, float]:
        """The instance this task and run started before (still usable), or a new one."""
        store = context.get("task_state_store")
        saved: dict[str, Any] = (store.get(STATE_KEY) if store is not None else None) or {}  # type: ignore[assignment]
        if saved.get("instance_id"):
            instance = self.hook.get_instance(str(saved["instance_id"]))
            if instance.outcome != "terminated":
                self.log.info("Continuing with approval %s, started by an earlier try.", instance.instance_id)
                return instance.instance_id, float(saved["created_at"])
            self.log.info(
                "Approval %s of an earlier try was revoked; starting a new one.", instance.instance_id
            )
        else:
            since = saved.get("attempt_at")
            if since is None and store is None and context["ti"].try_number > 1:
                since = _run_start_ms(context)
            if since is not None and (found := self._find(self._payload_values(), int(since))):
                self.log.info("Found approval %s, started by an earlier try.", found)
                self._save(store, found)
                return found, time.time()
        return self._start(store, self._payload_values())

    def _start(self, store: Any, values: list[dict[str, str]]) -> tuple[str, float]:
        from airflow_provider_dingtalk.hooks.approval import ApprovalCreateUnanswered

        attempt_at = int(time.time() * 1000)
        if store is not None:
            store.set(STATE_KEY, {"attempt_at": attempt_at})
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                instance_id = self.hook.start_instance(
                    process_code=self.process_code,
                    originator_user_id=self.originator_user_id,
                    form_component_values=values,
                    dept_id=None if self.dept_id in (None, "") else int(self.dept_id),
                    approvers=self.approvers,
                    cc_list=[c.strip() for c in self.cc_list.split(",")]
                    if isinstance(self.cc_list, str)
                    else self.cc_list,
                    cc_position=self.cc_position,
                )
            except ApprovalCreateUnanswered:
                found = self._find(values, attempt_at)
                if found:
                    self.log.warning(
                        "The create call got no answer, but DingTalk created approval %s.", found
                    )
                    instance_id = found
                elif attempt == CREATE_ATTEMPTS:
                    raise
                else:
                    self.log.warning("The create call got no answer and created nothing; creating again.")
                    continue
            return self._save(store, instance_id), time.time()
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _find(self, values: list[dict[str, str]], since_ms: int) -> str | None:
        """The newest instance not revoked that this originator started on the template since then,
        with exactly these form values."""
        found = self.hook.find_instances(
            process_code=self.process_code,
            originator_user_id=self.originator_user_id,
            start_time=since_ms - SEARCH_SLACK_MS,
            form_component_values=values,
        )
        usable = [i for i in found if i.outcome != "terminated"]
        return usable[-1].instance_id if usable else None

    def _save(self, store: Any, instance_id: str) -> str:
        if store is not None:
            store.set(STATE_KEY, {"instance_id": instance_id, "created_at": time.time()})
        return instance_id


def _run_start_ms(context: Context) -> int:
    run = context["dag_run"]
    start = getattr(run, "start_date", None) or getattr(run, "run_after", None)
    return int(start.timestamp() * 1000) if start is not None else int((time.time() - 86400) * 1000)
