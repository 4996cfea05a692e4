"""OA approvals (审批) through DingTalk's v1.0 workflow API: start, get, revoke, form schema, list, execute.

Built on :class:`~airflow_provider_dingtalk.hooks.base.DingTalkBaseHook` ``call_api``. The pages, on
open.dingtalk.com: "Create an approval instance", "Obtains the details of a single approval
instance", "Revoke an approval instance", "Obtain the form schema", "Obtain an approval list of
instance IDs", "Approve or reject the approval task". The app needs ``Workflow.Instance.Write``
(create, revoke, execute), ``Workflow.Instance.Read`` (get, list) and ``Workflow.Form.Read`` (schema).

Creating is not idempotent and DingTalk takes no idempotency key (``businessId`` is the number it
assigns), so :meth:`DingTalkApprovalHook.start_instance` never repeats a create that may have
reached DingTalk: it raises :class:`ApprovalCreateUnanswered` and the caller looks for the instance
with :meth:`~DingTalkApprovalHook.find_instances` before trying again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from airflow_provider_dingtalk.approvals import ApprovalInstance, FormSchema
from airflow_provider_dingtalk.exceptions import DingTalkAPIError, DingTalkError, DingTalkValidationError
from airflow_provider_dingtalk.hooks.base import DingTalkBaseHook

INSTANCES_PATH = "/v1.0/workflow/processInstances"
TERMINATE_PATH = "/v1.0/workflow/processInstances/terminate"
EXECUTE_PATH = "/v1.0/workflow/processInstances/execute"
SCHEMA_PATH = "/v1.0/workflow/forms/schemas/processCodes"
LIST_IDS_PATH = "/v1.0/workflow/processes/instanceIds/query"

MAX_APPROVER_NODES = 20
MAX_CC = 50
MAX_LIST_USERS = 10
LIST_PAGE = 20  # maxResults: DingTalk's largest page
ACTION_TYPES = ("AND", "OR", "NONE")
CC_POSITIONS = ("START", "FINISH", "START_FINISH")
Statuses = Sequence[Literal["RUNNING", "TERMINATED", "COMPLETED"]]


class ApprovalCreateUnanswered(DingTalkError):
    """The create call got no answer: DingTalk may have created the instance. Look before creating again."""


class DingTalkApprovalHook(DingTalkBaseHook):
    """OA approvals through the v1.0 workflow API.

    :param dingtalk_conn_id: a connection of type ``dingtalk`` (default ``dingtalk_default``).
    :param retry_policy: override the default retry policy (attempts, backoff, total time).
    """

    def start_instance(
        self,
        *,
        process_code: str,
        originator_user_id: str,
        form_component_values: Sequence[Mapping[str, str]],
        dept_id: int | None = None,
        approvers: Sequence[Mapping[str, Any]] | None = None,
        cc_list: Sequence[str] | None = None,
        cc_position: str | None = None,
    ) -> str:
        """Create an approval instance; its id.

        :param process_code: the template's ``processCode`` (``PROC-…``).
        :param originator_user_id: who starts it (the userId shown as its submitter).
        :param form_component_values: as :func:`~airflow_provider_dingtalk.approvals.form_component_values`
            makes them.
        :param dept_id: the originator's department (``-1``: the root); required without ``approvers``.
        :param approvers: ``[{"action_type": "AND"|"OR"|"NONE", "user_ids": [...]}, ...]`` (≤ 20 nodes),
            replacing the template's approver chain.
        :param cc_list: user ids to copy (≤ 50); DingTalk applies it only together with ``approvers``.
        :param cc_position: ``START``, ``FINISH`` or ``START_FINISH``.
        :raises ApprovalCreateUnanswered: the call got no answer; the instance may exist.
        """
        payload = self.start_payload(
            process_code=process_code,
            originator_user_id=originator_user_id,
            form_component_values=form_component_values,
            dept_id=dept_id,
            approvers=approvers,
            cc_list=cc_list,
            cc_position=cc_position,
        )

        def unanswered() -> None:
            raise ApprovalCreateUnanswered(
                f"DingTalk did not answer the create call for template {process_code}: the instance may "
                "exist; look for it before creating another"
            )

        answer = self.call_api("POST", INSTANCES_PATH, json=payload, on_no_answer=unanswered)
        instance_id = str(answer.get("instanceId") or "")
        if not instance_id:
            raise DingTalkAPIError(errmsg="the create answer has no instanceId", api=INSTANCES_PATH)
        self.log.info(
            "Started approval %s on template %s for %s.", instance_id, process_code, originator_user_id
        )
        return instance_id

    @staticmethod
    def start_payload(
        *,
        process_code: str,
        originator_user_id: str,
        form_component_values: Sequence[Mapping[str, str]],
        dept_id: int | None = None,
        approvers: Sequence[Mapping[str, Any]] | None = None,
        cc_list: Sequence[str] | None = None,
        cc_position: str | None = None,
    ) -> dict[str, Any]:
        """The create body, every argument checked (what the operator validates at parse time too)."""
        for name, value in (("process_code", process_code), ("originator_user_id", originator_user_id)):
            if not isinstance(value, str) or not value.strip():
                raise DingTalkValidationError(name, "is empty")
        payload: dict[str, Any] = {
            "processCode": process_code.strip(),
            "originatorUserId": originator_user_id.strip(),
            "formComponentValues": [dict(v) for v in form_component_values],
        }
        if dept_id is not None:
            try:
                payload["deptId"] = int(dept_id)
            except (TypeError, ValueError):
                raise DingTalkValidationError(
                    "dept_id", f"must be a department id (a number), not {dept_id!r}"
                ) from None
        elif not approvers:
            raise DingTalkValidationError(
                "dept_id",
                "is required when approvers are not given (the template's chain needs the department)",
            )
        if approvers:
            payload["approvers"] = _approvers(approvers)
        if cc_list:
            cc = _user_list("cc_list", cc_list)
            if len(cc) > MAX_CC:
                raise DingTalkValidationError("cc_list", "has too many users", size=len(cc), limit=MAX_CC)
            payload["ccList"] = cc
        if cc_position is not None:
            if cc_position not in CC_POSITIONS:
                raise DingTalkValidationError("cc_position", f"must be one of {list(CC_POSITIONS)}")
            payload["ccPosition"] = cc_position
        return payload

    def get_instance(self, instance_id: str) -> ApprovalInstance:
        """The instance as DingTalk has it now."""
        if not isinstance(instance_id, str) or not instance_id.strip():
            raise DingTalkValidationError("instance_id", "is empty")
        answer = self.call_api("GET", INSTANCES_PATH, params={"processInstanceId": instance_id.strip()})
        return ApprovalInstance.from_api(instance_id.strip(), answer.get("result") or {})

    def terminate_instance(
        self, instance_id: str, *, operating_user_id: str | None = None, remark: str | None = None
    ) -> None:
        """Revoke a running instance (not within 15 s of its creation: DingTalk refuses that).

        :param operating_user_id: revoke as this user, who must be the originator; by default the
            system revokes it (``isSystem``).
        :param remark: why (≤ 1024 characters), shown in the instance's record.
        """
        payload: dict[str, Any] = {"processInstanceId": instance_id, "isSystem": operating_user_id is None}
        if operating_user_id is not None:
            payload["operatingUserId"] = operating_user_id
        if remark:
            payload["remark"] = remark[:1024]
        self.call_api("POST", TERMINATE_PATH, json=payload)
        self.log.info("Revoked approval %s.", instance_id)

    def execute_task(
        self,
        instance_id: str,
        *,
        task_id: int,
        actioner_user_id: str,
        result: Literal["agree", "refuse"],
        remark: str | None = None,
    ) -> None:
        """Approve or refuse one task of an instance as its assignee (``tasks[].taskId`` from the GET)."""
        if result not in ("agree", "refuse"):
            raise DingTalkValidationError("result", "must be 'agree' or 'refuse'")
        payload: dict[str, Any] = {
            "processInstanceId": instance_id,
            "taskId": int(task_id),
            "actionerUserId": actioner_user_id,
            "result": result,
        }
        if remark:
            payload["remark"] = remark[:1024]
        self.call_api("POST", EXECUTE_PATH, json=payload)

    def get_form_schema(self, process_code: str) -> FormSchema:
        """The template's form: components, labels, required flags, options."""
        answer = self.call_api("GET", SCHEMA_PATH, params={"processCode": process_code})
        return FormSchema.from_api(process_code, answer.get("result") or {})

    def list_instance_ids(
        self,
        *,
        process_code: str,
        start_time: datetime | int,
        end_time: datetime | int | None = None,
        user_ids: Sequence[str] | None = None,
        statuses: Statuses | None = None,
    ) -> list[str]:
        """Ids of the template's instances created in the window, every page.

        :param start_time: the window's start (a datetime, or UNIX milliseconds); DingTalk allows 120 days.
        :param user_ids: only instances these users started (≤ 10).
        :param statuses: only instances in these states.
        """
        body: dict[str, Any] = {
            "processCode": process_code,
            "startTime": _ms(start_time),
            "maxResults": LIST_PAGE,
            "nextToken": 0,
        }
        if end_time is not None:
            body["endTime"] = _ms(end_time)
        if user_ids:
            users = _user_list("user_ids", user_ids)
            if len(users) > MAX_LIST_USERS:
                raise DingTalkValidationError(
                    "user_ids", "has too many users", size=len(users), limit=MAX_LIST_USERS
                )
            body["userIds"] = users
        if statuses:
            body["statuses"] = list(statuses)
        ids: list[str] = []
        while True:
            result = self.call_api("POST", LIST_IDS_PATH, json=body).get("result") or {}
            ids.extend(str(i) for i in result.get("list") or ())
            token = result.get("nextToken")
            if not token:
                return ids
            body["nextToken"] = token

    def find_instances(
        self,
        *,
        process_code: str,
        originator_user_id: str,
        start_time: datetime | int,
        end_time: datetime | int | None = None,
        form_component_values: Sequence[Mapping[str, str]] | None = None,
        business_id: str | None = None,
    ) -> list[ApprovalInstance]:
        """Instances the originator started on the template in the window, optionally only those whose
        form equals ``form_component_values`` or whose approval number is ``business_id``; oldest first."""
        ids = self.list_instance_ids(
            process_code=process_code, start_time=start_time, end_time=end_time, user_ids=[originator_user_id]
        )
        wanted = None if form_component_values is None else _form_key(form_component_values)
        found = []
        for instance_id in ids:
            instance = self.get_instance(instance_id)
            if instance.originator_user_id and instance.originator_user_id != originator_user_id:
                continue
            if wanted is not None and sorted(instance.form_values) != wanted:
                continue
            if business_id is not None and instance.business_id != business_id:
                continue
            found.append(instance)
        return found


def _form_key(values: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    return sorted((str(v["name"]), str(v["value"])) for v in values)


def _approvers(approvers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(approvers, Mapping | str):
        raise DingTalkValidationError("approvers", "must be a list of {action_type, user_ids} nodes")
    if len(approvers) > MAX_APPROVER_NODES:
        raise DingTalkValidationError(
            "approvers", "has too many nodes", size=len(approvers), limit=MAX_APPROVER_NODES
        )
    nodes = []
    for i, node in enumerate(approvers):
        if not isinstance(node, Mapping):
            raise DingTalkValidationError(f"approvers[{i}]", "must be {action_type, user_ids}")
        action = str(node.get("action_type", node.get("actionType", "NONE"))).upper()
        if action not in ACTION_TYPES:
            raise DingTalkValidationError(
                f"approvers[{i}].action_type", f"must be one of {list(ACTION_TYPES)}"
            )
        users = _user_list(f"approvers[{i}].user_ids", node.get("user_ids", node.get("userIds")) or [])
        if not users:
            raise DingTalkValidationError(f"approvers[{i}].user_ids", "is empty")
        if action == "NONE" and len(users) != 1:
            raise DingTalkValidationError(
                f"approvers[{i}].user_ids", "a NONE node has exactly one approver; use AND or OR for several"
            )
        nodes.append({"actionType": action, "userIds": users})
    return nodes


def _user_list(field: str, users: object) -> list[str]:
    if isinstance(users, str):
        users = [u for u in users.split(",") if u.strip()]
    if not isinstance(users, Sequence):
        raise DingTalkValidationError(field, "must be a list of user ids")
    out = []
    for i, user in enumerate(users):
        if not isinstance(user, str) or not user.strip():
            raise DingTalkValidationError(f"{field}[{i}]", "must be a non-empty user id")
        if user.strip() not in out:
            out.append(user.strip())
    return out


def _ms(value: datetime | int) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)
