"""Work notifications: asyncsend_v2, getsendprogress, getsendresult, recall, status bar.

Behaviour, as DingTalk documents it ("Asynchronous sending of enterprise session messages" and its
sibling pages on help.dingtalk.io; open-doc.dingtalk.com/microapp/serverapi2/pgoxpy for
``to_all_user``):

* The caps are DingTalk's, written here independently of the provider's constants so that tests
  catch a client that breaks them: ≤ 5,000 user ids and ≤ 500 department ids per call, ``msg`` ≤ 2048
  bytes (compact UTF-8 JSON), ``agent_id`` must be the calling app's.
* ``msg`` is checked field by field against :data:`.schemas.WORK_NOTIFICATION` (40035 naming the field).
* Unknown user ids (see :mod:`.directory`) land in ``invalid_user_id_list``, unknown departments in
  ``invalid_dept_id_list``. A department stands for its members (:meth:`.Directory.members`), and each
  person gets the message once however many of the lists name them. The same ``msg`` to the same user
  twice on one (UTC, emulator-clock) day is filtered with code 143106; more than 500 a day per user
  with 143105; recipients beyond 5,000 in a minute (emulator clock) per app with 143103. The send
  still answers success with a ``task_id``, exactly like DingTalk; the filtered users show up in
  getsendresult.
* Delivered messages go to the inbox, channel ``work_notification``: one item per person (target = the
  user id; ``meta["dept_id"]`` when they got it as a department member), or one with target ``@all``
  for ``to_all_user`` (more than 3 of those a day are silently dropped).
* Progress moves with emulator time: ``status`` 1 right after the send, 2 ("done") once
  :attr:`WorkNotifications.delivery_seconds` (1 s) of emulator time have passed
  (``emulator.advance(1)`` skips the wait). Tasks older than 24 h no longer answer progress or result.
* Errors DingTalk's pages do not pin down are the emulator's choice, from DingTalk's global table:
  40056 (不合法的agentid) for a foreign agent_id, 40035 (不合法的参数) for a bad parameter or an
  unknown task id.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request

from airflow_provider_dingtalk.testing.emulator.endpoints.directory import directory
from airflow_provider_dingtalk.testing.emulator.http import OapiError, oapi_app, ok, read_params, state_of
from airflow_provider_dingtalk.testing.emulator.schemas import WORK_NOTIFICATION, check_body
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp, EmulatorState

router = APIRouter()

_BASE = "/topapi/message/corpconversation"
USERS_PER_CALL = 5000
DEPTS_PER_CALL = 500
MSG_MAX_BYTES = 2048
PER_USER_PER_DAY = 500
TO_ALL_PER_DAY = 3
RECIPIENTS_PER_MINUTE = 5000
TASK_MEMORY = 86400
CODE_PER_MINUTE = "143103"
CODE_DAILY_LIMIT = "143105"
CODE_DUPLICATE = "143106"


@dataclass(kw_only=True)
class Task:
    app_key: str
    agent_id: int
    sent_at: float
    msg: dict[str, Any]
    delivered: list[str] = field(default_factory=list)
    invalid_users: list[str] = field(default_factory=list)
    invalid_depts: list[int] = field(default_factory=list)
    forbidden: list[dict[str, Any]] = field(default_factory=list)
    recalled: bool = False
    status_bar: dict[str, str] | None = None


@dataclass
class WorkNotifications:
    """Tasks by id, and the per-user daily counters DingTalk's flow control keeps."""

    delivery_seconds: float = 1.0
    tasks: dict[int, Task] = field(default_factory=dict)
    per_user_day: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    seen: set[tuple[str, str, int, str]] = field(default_factory=set)
    to_all_day: Counter[tuple[str, int]] = field(default_factory=Counter)
    # Per app: when each of the last minute's recipients was sent to (the 5,000-a-minute window).
    recent: dict[str, deque[float]] = field(default_factory=dict)
    next_task_id: int = 256271667526

    def minute_full(self, app_key: str, now: float) -> bool:
        window = self.recent.setdefault(app_key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        return len(window) >= RECIPIENTS_PER_MINUTE


def work_notifications(state: EmulatorState) -> WorkNotifications:
    return state.store("work_notification", WorkNotifications)


def _bad(what: str) -> OapiError:
    return OapiError(40035, f"不合法的参数: {what}")


def _agent(params: dict[str, Any], app: EmulatedApp) -> int:
    raw = str(params.get("agent_id", "")).strip()
    if not raw:
        raise _bad("agent_id 不能为空")
    if not raw.isdigit() or int(raw) != app.agent_id:
        raise OapiError(40056, "不合法的agentid")
    return app.agent_id


def _id_list(raw: Any, name: str, cap: int) -> list[str]:
    if raw in (None, ""):
        return []
    items = raw if isinstance(raw, list) else str(raw).split(",")
    values = [str(v).strip() for v in items if str(v).strip()]
    if len(values) > cap:
        raise _bad(f"{name} 超过最大数量 {cap}")
    return values


def _msg(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _bad("msg 不是合法的JSON") from None
    if not isinstance(raw, dict) or raw.get("msgtype") not in WORK_NOTIFICATION:
        raise _bad("msg.msgtype")
    msgtype = raw["msgtype"]
    extra = set(raw) - {"msgtype", msgtype}
    if extra:
        raise _bad(f"msg.{sorted(extra)[0]} 不是合法的参数")
    problem = check_body(raw[msgtype], WORK_NOTIFICATION[msgtype], f"msg.{msgtype}")
    if problem:
        raise _bad(f"{problem.path} {problem.describe()}")
    size = len(json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MSG_MAX_BYTES:
        raise _bad(f"msg 长度超过 {MSG_MAX_BYTES} 字节 ({size})")
    return raw


def _truthy(raw: Any) -> bool:
    return raw is True or str(raw).lower() == "true"


@router.post(f"{_BASE}/asyncsend_v2")
async def asyncsend_v2(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    params = await read_params(request)
    agent_id = _agent(params, app)
    users = _id_list(params.get("userid_list"), "userid_list", USERS_PER_CALL)
    depts = _id_list(params.get("dept_id_list"), "dept_id_list", DEPTS_PER_CALL)
    to_all = _truthy(params.get("to_all_user"))
    if "msg" not in params:
        raise _bad("msg 不能为空")
    msg = _msg(params["msg"])
    if not (users or depts or to_all):
        raise _bad("userid_list、dept_id_list、to_all_user 不能同时为空")
    with state.lock:
        store = work_notifications(state)
        now = state.clock.now()
        task_id = store.next_task_id
        store.next_task_id += 1
        task = Task(app_key=app.app_key, agent_id=agent_id, sent_at=now, msg=msg)
        store.tasks[task_id] = task
        day = int(now // 86400)
        meta = {"task_id": task_id, "agent_id": agent_id}
        if to_all:
            store.to_all_day[(app.app_key, day)] += 1
            if store.to_all_day[(app.app_key, day)] <= TO_ALL_PER_DAY:
                state.deliver("work_notification", "@all", msg, to_all_user=True, **meta)
        content = hashlib.sha256(json.dumps(msg, sort_keys=True).encode()).hexdigest()
        people = directory(state)
        # DingTalk sends once to each person: the members of the departments join the user list,
        # and whoever is in both (or in two departments) gets the message once.
        recipients: dict[str, int | None] = dict.fromkeys(users)
        for dept in dict.fromkeys(depts):
            if people.has_department(dept):
                for member in people.members(int(dept)):
                    recipients.setdefault(member, int(dept))
            else:
                task.invalid_depts.append(int(dept) if dept.isdigit() else -1)
        for userid, via_dept in recipients.items():
            if not people.has_user(userid):
                task.invalid_users.append(userid)
            elif (app.app_key, userid, day, content) in store.seen:
                task.forbidden.append({"code": CODE_DUPLICATE, "count": 1, "userid": userid})
            elif store.per_user_day[(app.app_key, userid, day)] >= PER_USER_PER_DAY:
                task.forbidden.append({"code": CODE_DAILY_LIMIT, "count": PER_USER_PER_DAY, "userid": userid})
            elif store.minute_full(app.app_key, now):
                task.forbidden.append(
                    {"code": CODE_PER_MINUTE, "count": RECIPIENTS_PER_MINUTE, "userid": userid}
                )
            else:
                store.seen.add((app.app_key, userid, day, content))
                store.per_user_day[(app.app_key, userid, day)] += 1
                store.recent[app.app_key].append(now)
                task.delivered.append(userid)
                extra_meta = {} if via_dept is None else {"dept_id": via_dept}
                state.deliver("work_notification", userid, msg, **meta, **extra_meta)
    return ok(state, task_id=task_id)


def _task(request: Request, params: dict[str, Any], app: EmulatedApp, key: str = "task_id") -> Task:
    _agent(params, app)
    raw = str(params.get(key, "")).strip()
    task = work_notifications(state_of(request)).tasks.get(int(raw)) if raw.isdigit() else None
    if task is None or task.app_key != app.app_key:
        raise _bad(f"{key} 不存在")
    return task


def _recent_task(request: Request, params: dict[str, Any], app: EmulatedApp) -> Task:
    """Progress and result answer only for tasks of the last 24 h (getsendresult's doc).

    DingTalk's exact error for an older task is not documented; the emulator answers as for an
    unknown task id, which is what a client has to handle either way.
    """
    task = _task(request, params, app)
    if state_of(request).clock.now() - task.sent_at > TASK_MEMORY:
        raise _bad("task_id 不存在 (只能查询24小时内的任务)")
    return task


@router.post(f"{_BASE}/getsendprogress")
async def getsendprogress(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    task = _recent_task(request, await read_params(request), app)
    elapsed = state.clock.now() - task.sent_at
    wait = work_notifications(state).delivery_seconds
    if elapsed >= wait:
        progress = {"progress_in_percent": 100, "status": 2}
    else:
        progress = {"progress_in_percent": min(99, int(100 * elapsed / wait)), "status": 1}
    return ok(state, progress=progress)


@router.post(f"{_BASE}/getsendresult")
async def getsendresult(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    task = _recent_task(request, await read_params(request), app)
    result = {
        "invalid_user_id_list": task.invalid_users,
        "forbidden_user_id_list": [f["userid"] for f in task.forbidden],
        "failed_user_id_list": [],
        "read_user_id_list": [],
        "unread_user_id_list": [] if task.recalled else task.delivered,
        "invalid_dept_id_list": task.invalid_depts,
        "forbidden_list": task.forbidden,
    }
    return ok(state, send_result=result)


@router.post(f"{_BASE}/recall")
async def recall(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    task = _task(request, await read_params(request), app, key="msg_task_id")
    task.recalled = True
    return ok(state)


@router.post(f"{_BASE}/status_bar/update")
async def status_bar_update(request: Request, app: EmulatedApp = Depends(oapi_app)) -> dict[str, Any]:
    state = state_of(request)
    params = await read_params(request)
    task = _task(request, params, app)
    value = str(params.get("status_value") or "").strip()
    if not value:
        raise _bad("status_value 不能为空")
    task.status_bar = {"status_value": value}
    if params.get("status_bg"):
        task.status_bar["status_bg"] = str(params["status_bg"])
    return ok(state, errmsg="成功")
