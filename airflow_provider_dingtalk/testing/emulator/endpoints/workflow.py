"""OA approvals, v1.0 workflow API: templates, instances, approvers acting, the events they cause.

As DingTalk's pages on open.dingtalk.com document them: "Create an approval instance", "Obtains the
details of a single approval instance", "Revoke an approval instance", "Obtain the form schema",
"Approve or reject the approval task", "Obtain an approval list of instance IDs", and the
``bpms_instance_change`` / ``bpms_task_change`` event pages. Strict where DingTalk is: form values
are strings named by the component's label, required fields and select options are checked
(``formConverterError``), an instance cannot be revoked in its first 15 s
(``aflowProcessInstStatusException``), and more than :attr:`Workflow.qps_limit` calls to one API in
one second from one app get HTTP 403 ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`` (DingTalk
does not publish its limits; the emulator's is a setting).

People act through the control API (:func:`approve`, :func:`refuse`, :func:`revoke`, or
``/_emulator/workflow/*``); :func:`auto_decide` makes a template's instances decide themselves
after a delay (for demos). Each change is pushed as DingTalk pushes it: over the HTTP callback
(:func:`~.callback.push_event`) when one subscribes to the event, down the app's Stream connection
(:func:`~.stream.push_event_if_connected`) while one is open, and to in-process
:attr:`Workflow.listeners`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from airflow_provider_dingtalk.testing.emulator.endpoints.directory import directory
from airflow_provider_dingtalk.testing.emulator.http import V1Error, read_v1_json, state_of, v1_app
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

router = APIRouter()

REVOKE_GRACE = 15.0  # seconds after creation during which DingTalk refuses a revoke
MAX_FORM_ITEMS = 150
MAX_VALUE = 65535
MAX_LIST_RANGE_MS = 120 * 86400 * 1000
DEMO_PROCESS_CODE = "PROC-EMULATOR-DATA-EXPORT"
_THROTTLED = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"


def demo_form() -> list[dict[str, Any]]:
    """The demo template's form: a data export request."""
    return [
        {"componentName": "TextField", "props": {"id": "TextField-DS", "label": "Dataset", "required": True}},
        {
            "componentName": "NumberField",
            "props": {"id": "NumberField-ROWS", "label": "Rows", "required": True},
        },
        {
            "componentName": "DDSelectField",
            "props": {
                "id": "DDSelectField-DEST",
                "label": "Destination",
                "required": True,
                "options": ["Warehouse", "Partner SFTP", "S3"],
            },
        },
        {
            "componentName": "DDDateRangeField",
            "props": {"id": "DDDateRangeField-P", "label": '["Start","End"]', "format": "yyyy-MM-dd"},
        },
        {"componentName": "TextareaField", "props": {"id": "TextareaField-R", "label": "Reason"}},
        {"componentName": "TextNote", "props": {"id": "TextNote-1", "label": "Exports are logged."}},
    ]


@dataclass(kw_only=True)
class Template:
    process_code: str
    name: str
    items: list[dict[str, Any]]
    approvers: list[dict[str, Any]]  # the template's own chain: [{"actionType", "userIds"}]
    allow_revoke: bool = True  # "允许提交人撤销审批中的审批单" in the OA admin console


@dataclass(kw_only=True)
class ApprovalTask:
    task_id: int
    user_id: str
    node: int
    status: str = "RUNNING"
    result: str = "NONE"
    create_time: float = 0.0
    finish_time: float | None = None


@dataclass(kw_only=True)
class Instance:
    instance_id: str
    app_key: str
    process_code: str
    title: str
    originator: str
    dept_id: int
    form: list[dict[str, str]]
    nodes: list[dict[str, Any]]
    cc: list[str]
    from_api_approvers: bool
    business_id: str
    created: float
    node: int = 0
    status: str = "RUNNING"
    result: str = ""
    finished: float | None = None
    tasks: list[ApprovalTask] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class AutoDecision:
    result: str
    after: float
    remark: str


@dataclass
class Workflow:
    templates: dict[str, Template] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    qps_limit: int = 20
    calls: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    auto: dict[str, AutoDecision] = field(default_factory=dict)
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)


def workflow(state: EmulatorState) -> Workflow:
    def make() -> Workflow:
        flow = Workflow()
        add_template(flow, DEMO_PROCESS_CODE, name="Data export", items=demo_form(), approvers=["user2"])
        return flow

    return state.store("workflow", make)


def add_template(
    flow: Workflow,
    process_code: str,
    *,
    name: str,
    items: list[dict[str, Any]],
    approvers: list[str] | list[dict[str, Any]],
    allow_revoke: bool = True,
) -> Template:
    """A published template; ``approvers`` is its chain (user ids: one node each; or nodes)."""
    nodes = [{"actionType": "NONE", "userIds": [a]} if isinstance(a, str) else dict(a) for a in approvers]
    template = Template(
        process_code=process_code, name=name, items=items, approvers=nodes, allow_revoke=allow_revoke
    )
    flow.templates[process_code] = template
    return template


# -- the API --------------------------------------------------------------------------------------


def _throttle(state: EmulatorState, app: EmulatedApp, api: str) -> Workflow:
    flow = workflow(state)
    second = int(state.clock.now())
    with state.lock:
        key = (app.app_key, api, second)
        flow.calls[key] += 1
        if flow.calls[key] > flow.qps_limit:
            raise V1Error(403, _THROTTLED, "应用调用该接口的频率超过限制，所有请求都被暂时禁用了")
    return flow


@router.post("/v1.0/workflow/processInstances")
async def create(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    flow = _throttle(state, app, "create")
    body = await read_v1_json(request)
    with state.lock:
        instance = _create(state, flow, app, body)
        events = _start_events(instance)
    await asyncio.to_thread(_publish, state, app, events)
    return {"instanceId": instance.instance_id}


@router.get("/v1.0/workflow/processInstances")
async def get(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    flow = _throttle(state, app, "get")
    instance_id = request.query_params.get("processInstanceId")
    if not instance_id:
        raise V1Error(400, "invalidParameter", "processInstanceId不能为空")
    events = _tick(state, flow, app)
    await asyncio.to_thread(_publish, state, app, events)
    with state.lock:
        instance = flow.instances.get(instance_id)
        if instance is None or instance.app_key != app.app_key:
            raise V1Error(400, "processInstanceNotExist", "审批实例不存在")
        return {"success": "true", "result": _render(state, instance)}


@router.post("/v1.0/workflow/processInstances/terminate")
async def terminate(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    flow = _throttle(state, app, "terminate")
    body = await read_v1_json(request)
    events = _tick(state, flow, app)
    with state.lock:
        instance = flow.instances.get(str(body.get("processInstanceId") or ""))
        if not body.get("processInstanceId"):
            raise V1Error(400, "invalidParameter", "processInstanceId不能为空")
        if instance is None or instance.app_key != app.app_key:
            raise V1Error(400, "aflowProcessInstNotExist", "审批实例不存在")
        is_system = body.get("isSystem")
        if not isinstance(is_system, bool):
            raise V1Error(400, "invalidInstanceTerminateIsSystem", "isSystem参数不合法")
        operator = body.get("operatingUserId")
        if not is_system and operator != instance.originator:
            raise V1Error(400, "invalidInstanceTerminateOperatingUserId", "操作人必须是审批发起人")
        events += _revoke(
            state,
            flow,
            instance,
            user=None if is_system else str(operator),
            remark=str(body.get("remark") or ""),
        )
    await asyncio.to_thread(_publish, state, app, events)
    return {"result": True, "success": True}


@router.post("/v1.0/workflow/processInstances/execute")
async def execute(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    flow = _throttle(state, app, "execute")
    body = await read_v1_json(request)
    with state.lock:
        instance = flow.instances.get(str(body.get("processInstanceId") or ""))
        if instance is None or instance.app_key != app.app_key:
            raise V1Error(400, "aflowProcessInstNotExist", "审批实例不存在")
        result = body.get("result")
        if result not in ("agree", "refuse"):
            raise V1Error(400, "invalidInstanceExecuteResult", "result参数不合法")
        task = next((t for t in instance.tasks if t.task_id == body.get("taskId")), None)
        if task is None:
            raise V1Error(400, "invalidInstanceExecuteTaskId", "taskId不合法")
        if task.user_id != body.get("actionerUserId"):
            raise V1Error(400, "invalidInstanceExecuteActionerUserId", "操作人不是任务的处理人")
        if instance.status != "RUNNING" or task.status != "RUNNING":
            raise V1Error(400, "aflowProcessInstStatusException", "审批实例状态异常")
        events = _act(state, instance, task.user_id, str(result), str(body.get("remark") or ""))
    await asyncio.to_thread(_publish, state, app, events)
    return {"result": True, "success": True}


@router.get("/v1.0/workflow/forms/schemas/processCodes")
async def schema(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    flow = _throttle(state, app, "schema")
    code = request.query_params.get("processCode")
    if not code:
        raise V1Error(400, "invalidParameter", "processCode不能为空")
    template = flow.templates.get(code)
    if template is None:
        raise V1Error(400, "formNotExist", "表单不存在")
    return {
        "result": {
            "name": template.name,
            "formCode": template.process_code,
            "status": "PUBLISHED",
            "procType": "inner",
            "schemaContent": {"title": template.name, "icon": "common", "items": template.items},
        }
    }


@router.post("/v1.0/workflow/processes/instanceIds/query")
async def list_ids(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    flow = _throttle(state, app, "list")
    body = await read_v1_json(request)
    code, start, end = body.get("processCode"), body.get("startTime"), body.get("endTime")
    size, token = body.get("maxResults"), body.get("nextToken")
    if not code or not isinstance(start, int) or token is None or not isinstance(size, int):
        raise V1Error(400, "invalidParameter", "processCode、startTime、nextToken、maxResults不能为空")
    if not 0 < size <= 20:
        raise V1Error(400, "invalidParameter", "maxResults最大为20")
    now_ms = int(state.clock.now() * 1000)
    end = end if isinstance(end, int) else now_ms
    if end - start > MAX_LIST_RANGE_MS:
        raise V1Error(400, "invalidParameter", "时间范围不能超过120天")
    users, statuses = body.get("userIds") or [], body.get("statuses") or []
    if len(users) > 10:
        raise V1Error(400, "invalidParameter", "userIds最多10个")
    events = _tick(state, flow, app)
    await asyncio.to_thread(_publish, state, app, events)
    with state.lock:
        matching = [
            i.instance_id
            for i in sorted(flow.instances.values(), key=lambda i: i.created)
            if i.app_key == app.app_key
            and i.process_code == code
            and start <= i.created * 1000 <= end
            and (not users or i.originator in users)
            and (not statuses or i.status in statuses)
        ]
    offset = int(token or 0)
    page = matching[offset : offset + size]
    more = offset + size < len(matching)
    return {"success": True, "result": {"list": page, "nextToken": str(offset + size) if more else ""}}


# -- the model ------------------------------------------------------------------------------------


def _create(state: EmulatorState, flow: Workflow, app: EmulatedApp, body: dict[str, Any]) -> Instance:
    code = body.get("processCode")
    if not isinstance(code, str) or not code:
        raise V1Error(400, "invalidParameter", "processCode不能为空")
    template = flow.templates.get(code)
    if template is None:
        raise V1Error(400, "processCodeError", "模板不存在或已删除")
    people = directory(state)
    originator = body.get("originatorUserId")
    if not isinstance(originator, str) or not people.has_user(originator):
        raise V1Error(400, "processInstanceInvalidParameter", "发起人userId不合法")
    approvers = body.get("approvers")
    dept = body.get("deptId")
    if dept is None and not approvers:
        raise V1Error(400, "invalidParameter", "deptId不能为空")
    if dept is not None and (
        not isinstance(dept, int)
        or (dept != -1 and (not people.has_department(dept) or originator not in people.members(dept)))
    ):
        raise V1Error(400, "processInstanceInvalidParameter", "发起人不在该部门中")
    nodes = template.approvers
    if approvers:
        if not isinstance(approvers, list) or len(approvers) > 20:
            raise V1Error(400, "invalidParameter", "approvers最多20个")
        for node in approvers:
            users = node.get("userIds") if isinstance(node, dict) else None
            if not isinstance(node, dict) or node.get("actionType") not in ("AND", "OR", "NONE") or not users:
                raise V1Error(400, "invalidParameter", "approvers参数不合法")
            if node["actionType"] == "NONE" and len(users) != 1:
                raise V1Error(400, "invalidParameter", "单人审批节点只能有一个审批人")
            if any(not isinstance(u, str) or not people.has_user(u) for u in users):
                raise V1Error(400, "processInstanceInvalidParameter", "审批人userId不合法")
        nodes = approvers
    cc = body.get("ccList") or []
    if len(cc) > 50 or any(not isinstance(u, str) or not people.has_user(u) for u in cc):
        raise V1Error(400, "processInstanceInvalidParameter", "抄送人userId不合法")
    form = _check_form(template, body.get("formComponentValues"))
    now = state.clock.now()
    seq = len(flow.instances) + 1
    instance = Instance(
        instance_id=state.request_id(),
        app_key=app.app_key,
        process_code=code,
        title=f"{originator}提交的{template.name}",
        originator=originator,
        dept_id=dept if isinstance(dept, int) else -1,
        form=form,
        nodes=[dict(n) for n in nodes],
        cc=list(cc) if approvers else [],  # without approvers DingTalk ignores ccList
        from_api_approvers=bool(approvers),
        business_id=f"{datetime.fromtimestamp(now, UTC):%Y%m%d%H%M}{seq:06d}",
        created=now,
    )
    instance.records.append(_record(instance.originator, "START_PROCESS_INSTANCE", "NONE", "", now))
    _open_node(state, instance)
    flow.instances[instance.instance_id] = instance
    return instance


def _check_form(template: Template, values: object) -> list[dict[str, str]]:
    def bad(label: str) -> V1Error:
        return V1Error(400, "formConverterError", f"表单数据校验失败，失败控件：{label}")

    if not isinstance(values, list) or not values:
        raise V1Error(400, "invalidParameter", "formComponentValues不能为空")
    if len(values) > MAX_FORM_ITEMS:
        raise V1Error(400, "invalidParameter", f"formComponentValues最多{MAX_FORM_ITEMS}个")
    by_label = {str(c["props"].get("label")): c for c in template.items}
    seen = set()
    out = []
    for item in values:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise V1Error(400, "invalidParameter", "formComponentValues的name和value必须是字符串")
        name, value = item["name"], item["value"]
        component = by_label.get(name)
        if component is None or component["componentName"] == "TextNote" or len(value) > MAX_VALUE:
            raise bad(name)
        if not _value_ok(component, value):
            raise bad(name)
        seen.add(name)
        out.append({"name": name, "value": value})
    for label, component in by_label.items():
        if component["props"].get("required") and label not in seen:
            raise bad(label)
    return out


def _value_ok(component: dict[str, Any], value: str) -> bool:
    kind, props = component["componentName"], component["props"]
    options = props.get("options") or []
    if kind in ("NumberField", "MoneyField"):
        try:
            return Decimal(value).is_finite()
        except InvalidOperation:
            return False
    if kind == "DDSelectField":
        return not options or value in options
    if kind in ("DDMultiSelectField", "DDDateRangeField", "TableField", "InnerContactField", "DDPhotoField"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return False
        if not isinstance(parsed, list):
            return False
        if kind == "DDMultiSelectField":
            return all(v in options for v in parsed) if options else True
        if kind == "DDDateRangeField":
            return len(parsed) == 2 and all(_date_ok(str(d), props.get("format")) for d in parsed)
        if kind == "TableField":
            columns = {c["props"]["label"] for c in component.get("children") or ()}
            return all(
                isinstance(row, list) and all(cell.get("name") in columns for cell in row) for row in parsed
            )
        return True
    if kind == "DDDateField":
        return _date_ok(value, props.get("format"))
    return True


def _date_ok(value: str, fmt: str | None) -> bool:
    py = "%Y-%m-%d %H:%M" if fmt == "yyyy-MM-dd HH:mm" else "%Y-%m-%d"
    try:
        datetime.strptime(value, py)
    except ValueError:
        return False
    return True


def _open_node(state: EmulatorState, instance: Instance) -> None:
    node = instance.nodes[instance.node]
    now = state.clock.now()
    for user in node["userIds"]:
        instance.tasks.append(
            ApprovalTask(task_id=10000 + state.next_id(), user_id=user, node=instance.node, create_time=now)
        )


def _record(user: str, kind: str, result: str, remark: str, when: float) -> dict[str, Any]:
    return {
        "userId": user,
        "date": _time(when),
        "type": kind,
        "result": result,
        "remark": remark,
        "attachments": [],
        "images": [],
    }


def _act(
    state: EmulatorState, instance: Instance, user: str, result: str, remark: str
) -> list[dict[str, Any]]:
    """``user`` agrees or refuses their open task; the instance moves on. Caller holds the lock."""
    now = state.clock.now()
    task = next((t for t in instance.tasks if t.user_id == user and t.status == "RUNNING"), None)
    if instance.status != "RUNNING" or task is None:
        raise ValueError(f"{user} has no open task in approval {instance.instance_id} ({instance.status})")
    task.status, task.result, task.finish_time = "COMPLETED", result.upper(), now
    instance.records.append(_record(user, "EXECUTE_TASK_NORMAL", result.upper(), remark, now))
    events = [_task_event(instance, task, "finish", result=result, remark=remark)]
    node = instance.nodes[instance.node]
    siblings = [t for t in instance.tasks if t.node == instance.node and t.status == "RUNNING"]
    node_done = result == "refuse" or node["actionType"] != "AND" or not siblings
    if not node_done:
        return events
    for other in siblings:
        other.status, other.finish_time = "CANCELED", now
        events.append(_task_event(instance, other, "cancel"))
    if result == "agree" and instance.node + 1 < len(instance.nodes):
        instance.node += 1
        _open_node(state, instance)
        events += [_task_event(instance, t, "start") for t in instance.tasks if t.node == instance.node]
        return events
    instance.status, instance.result, instance.finished = "COMPLETED", result, now
    instance.records.append(_record(instance.originator, "FINISH_PROCESS_INSTANCE", "NONE", "", now))
    events.append(_instance_event(instance, "finish", result=result))
    return events


def _revoke(
    state: EmulatorState, flow: Workflow, instance: Instance, *, user: str | None, remark: str
) -> list[dict[str, Any]]:
    """Revoke (terminate) a running instance, with DingTalk's rules. Caller holds the lock."""
    now = state.clock.now()
    if instance.status != "RUNNING" or now - instance.created < REVOKE_GRACE:
        raise V1Error(
            400, "aflowProcessInstStatusException", "提交审批后 15 秒内不允许撤销，或审批实例已结束"
        )
    if not flow.templates[instance.process_code].allow_revoke:
        raise V1Error(400, "internalError", "审批系统错误")
    for task in instance.tasks:
        if task.status == "RUNNING":
            task.status, task.finish_time = "CANCELED", now
    instance.status, instance.result, instance.finished = "TERMINATED", "", now
    instance.records.append(_record(user or "system", "TERMINATE_PROCESS_INSTANCE", "NONE", remark, now))
    return [_instance_event(instance, "terminate")]


def _tick(state: EmulatorState, flow: Workflow, app: EmulatedApp) -> list[dict[str, Any]]:
    """Instances of auto-deciding templates whose delay has passed decide now (the demo's approver)."""
    events: list[dict[str, Any]] = []
    if not flow.auto:
        return events
    now = state.clock.now()
    with state.lock:
        for instance in flow.instances.values():
            auto = flow.auto.get(instance.process_code)
            if instance.app_key != app.app_key or auto is None or now < instance.created + auto.after:
                continue
            while instance.status == "RUNNING":
                task = next(t for t in instance.tasks if t.status == "RUNNING")
                events += _act(state, instance, task.user_id, auto.result, auto.remark)
    return events


def _render(state: EmulatorState, instance: Instance) -> dict[str, Any]:
    return {
        "title": instance.title,
        "createTime": _time(instance.created),
        "finishTime": _time(instance.finished) if instance.finished else None,
        "originatorUserId": instance.originator,
        "originatorDeptId": str(instance.dept_id),
        "originatorDeptName": "Root" if instance.dept_id == -1 else f"Department {instance.dept_id}",
        "status": instance.status,
        "result": instance.result,
        "businessId": instance.business_id,
        "bizAction": "REVOKE" if instance.status == "TERMINATED" else "NONE",
        "approverUserIds": [u for n in instance.nodes for u in n["userIds"]]
        if instance.from_api_approvers
        else [],
        "ccUserIds": instance.cc,
        "attachedProcessInstanceIds": [],
        "formComponentValues": [
            {"id": _component_id(state, instance, v["name"]), "name": v["name"], "value": v["value"]}
            for v in instance.form
        ],
        "operationRecords": instance.records,
        "tasks": [
            {
                "taskId": t.task_id,
                "userId": t.user_id,
                "status": t.status,
                "result": t.result,
                "createTime": _time(t.create_time),
                "finishTime": _time(t.finish_time) if t.finish_time else None,
                "activityId": f"node_{t.node}",
                "processInstanceId": instance.instance_id,
                "pcUrl": f"https://aflow.dingtalk.com/dingtalk/pc/query/pchomepage.htm?procInsId={instance.instance_id}",
            }
            for t in instance.tasks
        ],
    }


def _component_id(state: EmulatorState, instance: Instance, label: str) -> str:
    template = workflow(state).templates[instance.process_code]
    return next((str(c["props"].get("id")) for c in template.items if c["props"].get("label") == label), "")


def _time(when: float) -> str:
    return f"{datetime.fromtimestamp(when, UTC):%Y-%m-%dT%H:%M}Z"


# -- events ---------------------------------------------------------------------------------------


def _base_event(instance: Instance, kind: str) -> dict[str, Any]:
    return {
        "processInstanceId": instance.instance_id,
        "processCode": instance.process_code,
        "corpId": "dingemulatorcorp",
        "type": kind,
        "title": instance.title,
        "businessId": instance.business_id,
        "bizCategoryId": "",
        "createTime": int(instance.created * 1000),
        "url": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?procInsId={instance.instance_id}",
    }


def _instance_event(instance: Instance, kind: str, *, result: str | None = None) -> dict[str, Any]:
    event = {
        "EventType": "bpms_instance_change",
        **_base_event(instance, kind),
        "staffId": instance.originator,
    }
    if result:
        event["result"] = result
    if instance.finished is not None:
        event["finishTime"] = int(instance.finished * 1000)
    return event


def _task_event(
    instance: Instance, task: ApprovalTask, kind: str, *, result: str | None = None, remark: str = ""
) -> dict[str, Any]:
    event = {
        "EventType": "bpms_task_change",
        **_base_event(instance, kind),
        "staffId": task.user_id,
        "taskId": task.task_id,
    }
    if result:
        event["result"] = result
    if remark:
        event["remark"] = remark
    if task.finish_time is not None:
        event["finishTime"] = int(task.finish_time * 1000)
    return event


def _start_events(instance: Instance) -> list[dict[str, Any]]:
    return [_instance_event(instance, "start"), *(_task_event(instance, t, "start") for t in instance.tasks)]


def _publish(state: EmulatorState, app: EmulatedApp, events: list[dict[str, Any]]) -> None:
    """Push each event to the in-process listeners, the HTTP callbacks that subscribe and the app's
    Stream connection if one is open. Blocking."""
    from airflow_provider_dingtalk.testing.emulator.endpoints.callback import push_event
    from airflow_provider_dingtalk.testing.emulator.endpoints.stream import push_event_if_connected

    for event in events:
        for listener in list(workflow(state).listeners):
            listener(event)
        with contextlib.suppress(LookupError):  # no callback takes this type: DingTalk sends it nowhere
            push_event(state, app, event)
        push_event_if_connected(state, app, event)


# -- the control API: people acting, for tests and demos ------------------------------------------


def _instance(state: EmulatorState, instance_id: str) -> Instance:
    instance = workflow(state).instances.get(instance_id)
    if instance is None:
        raise KeyError(f"no approval instance {instance_id}")
    return instance


def approve(state: EmulatorState, instance_id: str, user_id: str, remark: str = "") -> None:
    """``user_id`` agrees in DingTalk (their open task on the instance)."""
    _decide(state, instance_id, user_id, "agree", remark)


def refuse(state: EmulatorState, instance_id: str, user_id: str, remark: str = "") -> None:
    """``user_id`` refuses in DingTalk: the instance ends with ``refuse``."""
    _decide(state, instance_id, user_id, "refuse", remark)


def _decide(state: EmulatorState, instance_id: str, user_id: str, result: str, remark: str) -> None:
    with state.lock:
        instance = _instance(state, instance_id)
        events = _act(state, instance, user_id, result, remark)
    _publish(state, state.apps[instance.app_key], events)


def revoke(state: EmulatorState, instance_id: str, remark: str = "") -> None:
    """The originator revokes in DingTalk (the 15-second rule applies).

    :raises V1Error: too early, already finished, or the template forbids revoking.
    """
    with state.lock:
        instance = _instance(state, instance_id)
        events = _revoke(state, workflow(state), instance, user=instance.originator, remark=remark)
    _publish(state, state.apps[instance.app_key], events)


def auto_decide(
    state: EmulatorState, process_code: str, *, result: str = "agree", after: float = 0.0, remark: str = ""
) -> None:
    """Every instance of the template is decided ``after`` seconds (emulator clock) from its creation."""
    workflow(state).auto[process_code] = AutoDecision(result=result, after=after, remark=remark)


def render(state: EmulatorState, instance_id: str) -> dict[str, Any]:
    """The instance as the GET answers it."""
    with state.lock:
        return _render(state, _instance(state, instance_id))


@router.post("/_emulator/workflow/{action}")
async def control(action: str, request: Request) -> dict[str, Any]:
    """``approve``/``refuse`` ``{instance_id, user_id, remark?}``, ``revoke`` ``{instance_id, remark?}``."""
    state = state_of(request)
    body = await request.json()
    acts: dict[str, Callable[..., None]] = {"approve": approve, "refuse": refuse}
    try:
        if action in acts:
            await asyncio.to_thread(
                acts[action], state, body["instance_id"], body["user_id"], body.get("remark", "")
            )
        elif action == "revoke":
            await asyncio.to_thread(revoke, state, body["instance_id"], body.get("remark", ""))
        else:
            raise HTTPException(404, f"unknown action {action}")
    except (KeyError, ValueError, V1Error) as exc:
        raise HTTPException(409, str(exc)) from None
    return {"status": "ok"}


@router.post("/_emulator/workflow-settings")
async def settings(request: Request) -> dict[str, Any]:
    """``{"qps_limit": N}``: calls per second per app and API before DingTalk's 403."""
    flow = workflow(state_of(request))
    flow.qps_limit = int((await request.json())["qps_limit"])
    return {"qps_limit": flow.qps_limit}


@router.get("/_emulator/workflow/instances")
async def instances(request: Request) -> list[dict[str, Any]]:
    state = state_of(request)
    with state.lock:
        return [
            {"instanceId": i.instance_id, **_render(state, i)} for i in workflow(state).instances.values()
        ]
