"""App robot, v1.0: ``groupMessages/send`` and ``oToMessages/batchSend`` with their HTTP 400 errors.

Groups exist when their ``openConversationId`` starts with ``cid``; users are the directory's. The
robot of an app is its AppKey. Error codes are those of DingTalk's "Chatbots send one-on-one chat
messages in batches" and "The robot sends a group message" pages (help.dingtalk.io) and its
``alibabacloud-dingtalk`` SDK; the one for a wrong robotCode (``invalidParameter.robotCode.invalid``)
is not confirmed there. ``msgParam`` is checked against :data:`.schemas.APP_ROBOT` for its
``msgKey``; a mismatch is ``invalidParameter.msgParam.invalid`` naming the field (DingTalk's message
for it is not documented).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request

from airflow_provider_dingtalk.testing.emulator.endpoints.directory import directory
from airflow_provider_dingtalk.testing.emulator.http import V1Error, read_v1_json, state_of, v1_app
from airflow_provider_dingtalk.testing.emulator.schemas import APP_ROBOT, check_body
from airflow_provider_dingtalk.testing.emulator.state import EmulatedApp

router = APIRouter()

MSG_PARAM_MAX_BYTES = 15000
MAX_USER_IDS = 20


@router.post("/v1.0/robot/groupMessages/send")
async def group_send(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    body = await read_v1_json(request)
    message = _message(body, app)
    cid = str(body.get("openConversationId") or "")
    if not cid.startswith("cid"):
        raise V1Error(400, "invalid.openConversationId", "openConversationId不合法")
    key = state.random_hex(32)
    state.deliver(
        "app_robot_group", cid, message, process_query_key=key, cool_app_code=body.get("coolAppCode")
    )
    return {"processQueryKey": key}


@router.post("/v1.0/robot/oToMessages/batchSend")
async def oto_send(request: Request, app: EmulatedApp = Depends(v1_app)) -> dict[str, Any]:
    state = state_of(request)
    body = await read_v1_json(request)
    message = _message(body, app)
    users = body.get("userIds")
    if not isinstance(users, list) or not users:
        raise V1Error(400, "invalidParameter.userIds.empty", "userIds不能为空")
    if len(users) > MAX_USER_IDS:
        raise V1Error(400, "invalidParameter.userIds.overMax", f"userIds最多{MAX_USER_IDS}个")
    known = directory(state)
    invalid = [u for u in users if not known.has_user(str(u))]
    key = state.random_hex(32)
    for user in users:
        if user not in invalid:
            state.deliver("app_robot_oto", str(user), message, process_query_key=key)
    return {"processQueryKey": key, "invalidStaffIdList": invalid, "flowControlledStaffIdList": []}


def _message(body: dict[str, Any], app: EmulatedApp) -> dict[str, Any]:
    """The checks both sends share: robotCode, msgKey, and msgParam as a JSON string ≤ 15,000 bytes."""
    code = body.get("robotCode")
    if not code:
        raise V1Error(400, "invalidParameter.robotCode.empty", "robotCode不能为空")
    if code != app.app_key:
        raise V1Error(400, "invalidParameter.robotCode.invalid", "robotCode不存在或不属于当前应用")
    key = body.get("msgKey")
    if not isinstance(key, str) or key not in APP_ROBOT:
        raise V1Error(400, "invalidParameter.msgKey.invalid", "msgKey不合法")
    raw = body.get("msgParam")
    try:
        param = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        param = None
    if not isinstance(param, dict):
        raise V1Error(400, "invalidParameter.msgParam.invalid", "msgParam必须是JSON格式")
    if len(raw.encode("utf-8")) > MSG_PARAM_MAX_BYTES:  # type: ignore[union-attr]
        raise V1Error(400, "invalidParameter.msgParam.invalid", f"msgParam长度不能超过{MSG_PARAM_MAX_BYTES}")
    problem = check_body(param, APP_ROBOT[key], "msgParam")
    if problem:
        raise V1Error(400, "invalidParameter.msgParam.invalid", f"{problem.path} {problem.describe()}")
    return {"msgKey": key, "msgParam": param}
